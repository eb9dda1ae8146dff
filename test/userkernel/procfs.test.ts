// /proc for real programs: a static C program that reads /proc/self as programs do (environ,
// exe, maps parsed line by line, fdinfo, limits, oom_score_adj, comm, task/, thread-self,
// /proc/sys/kernel) prints the same natively and in a userkernel sandbox; busybox's own maps
// (the same binary as the host's) show the same segments, offsets and names as natively.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { runNative, workdir } from "./helpers.js";
import { type BusyboxBundle, busyboxBundle, runIn } from "./rootfs-run.js";

describe("userkernel /proc for real programs", () => {
  let b: BusyboxBundle;
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    b = await busyboxBundle();
    w = await workdir();
    bin = await w.compile("procself");
    mkdirSync(path.join(b.rootfs, "t"));
    copyFileSync(bin, path.join(b.rootfs, "t/procself"));
  });
  after(async () => {
    await b?.remove();
    await w?.remove();
  });

  it("a program reading /proc/self sees what it sees natively", async () => {
    const native = await runNative(bin, [w.dir]);
    const user = await runIn(b.rootfs, ["/t/procself", "/tmp"], { env: ["GREETING=hi"] });
    assert.equal(native.code, 0, native.stderr);
    assert.equal(user.code, 0, `${user.stderr}\n${user.log.join("\n")}`);
    assert.equal(user.stdout, native.stdout);
    // The comparison means something only if the program got the real answers.
    for (const line of [
      "environ:\nGREETING=hi\n",
      "exe is argv[0]: yes\n",
      "maps sorted: yes, names at column 73: yes\n",
      "main: r-xp yes\n",
      "text offset from the first page: yes\n",
      "heap: rw-p [heap]\n",
      "stack: rw-p [stack]\n",
      "fdinfo file:\npos:\t3\nflags:\t02100002\nmnt_id and ino lines: yes\n",
      "pipe write end link mode: 300\n",
      "Max open files            100                  200                  files",
      "oom now: 500\n",
      "oom 1001: -22\n",
      "comm: 0123456789abcde\n",
      "prctl name: renamed\n",
      "tasks: 1, the thread itself: yes\n",
      "thread-self: yes\n",
      "status threads: 1\n",
      "ngroups_max: 65536\n",
      "environ: 400 mine: yes\n",
      "fstatat(-1, absolute): 0 same: yes\n",
      "fstatat(-1, relative): EBADF\n",
      'fstatat(-1, "", AT_EMPTY_PATH): EBADF\n',
      "auxv: pagesz yes, AT_RANDOM as getauxval yes, ends with AT_NULL yes\n",
      "statm fields: 7\n",
      "stat: softirq yes, procs_running >= 1 yes\n",
      "status: VmData yes VmStk yes VmExe yes VmHWM yes\n",
      "/proc/mounts -> self/mounts\n",
      "thread-self/exe is exe: yes\n",
      "domainname is uname's: yes\n",
      "boot_id: 37 chars\n",
      "shared anon: rw-s /dev/zero (deleted)\n",
      "pipe reopened: open ok, write 6, read 6 via-fd\n",
      "stat: main in code yes, stack above us yes\n",
      "/proc mounted rw: yes\n",
      "mkdir in /proc: -1 ENOENT\n",
      "creat in /proc: -1 ENOENT\n",
      "unlink in /proc: -1 EPERM\n",
      "stat: arg range is cmdline yes, env range is environ yes\n",
      "mem pread: 10 hello-mem\n",
      "mem pwrite read-only page: 7 forced\n",
      "mem read across the end: 6\n",
      "mem unmapped: -1 EIO\n",
      "mem read at lseek: hello, then 5\n",
    ])
      assert.ok(user.stdout.includes(line), `missing ${JSON.stringify(line)} in:\n${user.stdout}`);
  });

  it("busybox's maps show its segments, file offsets, bss, heap and stack as natively", async () => {
    // The image's busybox is the host's (a non-PIE static binary): its segments land at the
    // same addresses, so the lines compare as they are, device and inode aside.
    const shape = (maps: string): string[] => {
      const lines = maps.split("\n");
      const last = lines.map((l) => l.endsWith("busybox")).lastIndexOf(true);
      return (
        lines
          // The program's own mappings, the bss right after them, [heap] and [stack]: the
          // others (the vDSO, what glibc maps at run time) are not the program's layout.
          .filter(
            (l, i) => i <= last || (i === last + 1 && / 00:00 0 $/.test(l)) || /\[(heap|stack)\]$/.test(l),
          )
          .map((l) =>
            l
              .replace(/ [0-9a-f]{2}:[0-9a-f]{2} \d+ +/, " DEV ")
              .replace(/\S*busybox$/, "BUSYBOX")
              .replace(/^[0-9a-f]+-[0-9a-f]+( rw-p 00000000 DEV \[(heap|stack)\])$/, "ADDR$1"),
          )
      );
    };
    const native = await runNative("/usr/bin/busybox", ["cat", "/proc/self/maps"]);
    const user = await runIn(b.rootfs, ["cat", "/proc/self/maps"]);
    assert.equal(user.code, 0, user.stderr);
    const want = shape(native.stdout);
    assert.ok(want.filter((l) => l.endsWith("BUSYBOX")).length >= 4, native.stdout);
    assert.deepEqual(shape(user.stdout), want, `userkernel:\n${user.stdout}\nnative:\n${native.stdout}`);
  });

  it("nproc, /proc/stat's cpu lines and /proc/cpuinfo count the same CPUs as natively", async () => {
    // nproc asks sched_getaffinity; glibc's get_nprocs counts /proc/stat's cpuN lines when
    // /sys is absent (as in the sandbox); programs count cpuinfo's "processor" lines.
    const native = await runNative("/usr/bin/busybox", ["nproc"]);
    const nproc = await runIn(b.rootfs, ["nproc"]);
    assert.equal(nproc.stdout, native.stdout);
    const stat = await runIn(b.rootfs, ["cat", "/proc/stat"]);
    assert.equal(String(stat.stdout.match(/^cpu\d+ /gm)?.length ?? 0), native.stdout.trim());
    const cpuinfo = await runIn(b.rootfs, ["cat", "/proc/cpuinfo"]);
    assert.equal(String(cpuinfo.stdout.match(/^processor\t: \d+$/gm)?.length ?? 0), native.stdout.trim());
    assert.match(cpuinfo.stdout, /^flags\t\t: .*\bsse2\b/m);
  });

  it("busybox ls -l shows /proc/self's files, links and modes", async () => {
    const user = await runIn(b.rootfs, ["ls", "-l", "/proc/self/"]);
    assert.equal(user.code, 0, user.stderr);
    for (const re of [
      /^-r-------- .* environ$/m,
      /^-rw-r--r-- .* comm$/m,
      /^-rw-r--r-- .* oom_score_adj$/m,
      /^lrwxrwxrwx .* exe -> \/bin\/busybox$/m,
      /^lrwxrwxrwx .* root -> \/$/m,
      /^dr-x------ .* fdinfo$/m,
      /^dr-xr-xr-x .* task$/m,
      /^-r--r--r-- .* maps$/m,
      /^-r--r--r-- .* limits$/m,
    ])
      assert.match(user.stdout, re);
    const fds = await runIn(b.rootfs, ["ls", "-l", "/proc/self/fd/"]);
    assert.match(fds.stdout, /^lr-x------ .* 0 -> /m);
    assert.match(fds.stdout, /^l-wx------ .* 1 -> /m);
  });
});
