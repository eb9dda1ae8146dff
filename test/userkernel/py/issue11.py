# What issue 11 asks of python3 under the userkernel, printing only deterministic results:
# imports, /etc/passwd through glibc's NSS, a subprocess of a busybox command, 8 threads summing, os.fork with os.waitpid,
# signal.setitimer with a handler, a multiprocessing.Pool(4).map. Exits 0 only if all ran.
import hashlib
import json
import multiprocessing
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import threading
import time


def square(x):
    return x * x


def main():
    print("python", "%d.%d" % sys.version_info[:2])
    print("json", json.dumps({"b": [1, 2], "a": None}, sort_keys=True))
    print("sha256", hashlib.sha256(b"moat").hexdigest())
    print("user", pwd.getpwuid(os.getuid()).pw_name, os.getcwd())

    r = subprocess.run(["echo", "from", "busybox"], capture_output=True, text=True)
    print("subprocess.run", r.returncode, r.stdout.strip())
    r = subprocess.run(["sh", "-c", "exit 3"])
    print("subprocess exit code", r.returncode)
    out = subprocess.check_output("echo a b c | wc -w", shell=True, text=True)
    print("shell pipeline", out.strip())

    total = 0
    lock = threading.Lock()

    def add(lo, hi):
        nonlocal total
        s = sum(range(lo, hi))
        with lock:
            total += s

    threads = [threading.Thread(target=add, args=(i * 125000, (i + 1) * 125000)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("8 threads summed", total, total == sum(range(1000000)))

    pid = os.fork()
    if pid == 0:
        os._exit(7)
    got, status = os.waitpid(pid, 0)
    print("fork + waitpid", got == pid, os.waitstatus_to_exitcode(status))

    ticks = []
    signal.signal(signal.SIGALRM, lambda s, f: ticks.append(s))
    signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
    deadline = time.monotonic() + 30
    while len(ticks) < 3 and time.monotonic() < deadline:
        signal.pause()
    signal.setitimer(signal.ITIMER_REAL, 0)
    print("setitimer handler ran at least 3 times", len(ticks) >= 3)

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "f")
        with open(p, "w") as f:
            f.write("temp")
        with open(p) as f:
            print("tempfile", f.read())

    with multiprocessing.Pool(4) as pool:
        print("Pool(4).map", pool.map(square, range(10)))
    print("done")


if __name__ == "__main__":
    main()
