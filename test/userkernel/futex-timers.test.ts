// Futexes, timers and CPU time: the futex table on its own (who a wake picks, requeues,
// bitsets, timeouts and interruption), then static C programs that use futex(2), interval
// and POSIX timers, CPU-time clocks and getrusage/times print the same natively as under the
// userkernel, and a timer's SIGALRM with the default action ends the process by signal 14;
// POSIX shared memory and semaphores over /dev/shm in a rootfs work as natively.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { FutexTable, futexKey } from "../../src/userkernel/kernel/futex.js";
import { runStatic } from "../../src/userkernel/kernel/run.js";
import type { Blockable } from "../../src/userkernel/kernel/wait.js";
import {
  AddressSpace,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
} from "../../src/userkernel/mm/addrspace.js";
import { MemoryFile } from "../../src/userkernel/mm/memfile.js";
import { sharedFilePages } from "../../src/userkernel/mm/shared-files.js";
import { assertSameAsNative, C_DIR, Collector, runNative, runUser, workdir } from "./helpers.js";

function task(): Blockable & { exitStatus: unknown } {
  return { blockedOn: undefined, exitStatus: undefined };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("futex table", () => {
  it("wakes in arrival order, at most n, only matching bitsets, and never a woken waiter twice", async () => {
    const f = new FutexTable();
    const order: number[] = [];
    const waits = [1, 2, 3, 4].map((i) =>
      f
        .wait(task(), "k", () => 0, 0, i === 2 ? 0b10 : 0b01, undefined)
        .then((r) => {
          order.push(i);
          return r;
        }),
    );
    assert.equal(f.waiters("k"), 4);
    assert.equal(f.wake("k", 2, 0b01), 2, "two waiters with bit 0 are woken");
    await tick();
    assert.deepEqual(order, [1, 3]);
    assert.equal(f.wake("k", 5, 0b10), 1);
    await tick();
    assert.deepEqual(order, [1, 3, 2]);
    assert.equal(f.wake("other", 1), 0);
    // A count of 0 still wakes one, as on Linux.
    assert.equal(f.wake("k", 0), 1);
    assert.deepEqual(await Promise.all(waits), ["woken", "woken", "woken", "woken"]);
    assert.equal(f.waiters("k"), 0);
  });

  it("checks the word before sleeping and requeues without waking", async () => {
    const f = new FutexTable();
    assert.throws(() => f.wait(task(), "a", () => 5, 4, ~0, undefined), /EAGAIN/);
    const rs = [0, 1, 2, 3].map(() => f.wait(task(), "a", () => 4, 4, ~0, undefined));
    // Wake one, move two to "b": the count is both; the last stays on "a".
    assert.equal(f.requeue("a", "b", 1, 2), 3);
    assert.equal(f.waiters("a"), 1);
    assert.equal(f.waiters("b"), 2);
    assert.equal(f.wake("a", 10), 1);
    assert.equal(f.wake("b", 10), 2);
    assert.deepEqual(await Promise.all(rs), ["woken", "woken", "woken", "woken"]);
    // Nothing to requeue: nothing counted.
    assert.equal(f.requeue("a", "b", 0, 0), 0);
  });

  it("times out and is interrupted, leaving no waiter behind", async () => {
    const f = new FutexTable();
    const r = await f.wait(task(), "t", () => 1, 1, ~0, process.hrtime.bigint() + 20_000_000n);
    assert.equal(r, "timeout");
    assert.equal(f.waiters("t"), 0);
    const t = task();
    const p = f.wait(t, "t", () => 1, 1, ~0, undefined);
    t.blockedOn?.interrupt();
    assert.equal(await p, "interrupted");
    assert.equal(f.waiters("t"), 0);
    assert.equal(f.wake("t", 1), 0, "an interrupted waiter was still woken");
  });
});

describe("futex keys", () => {
  const mem = new MemoryFile(2 ** 30);
  after(() => mem.close());
  const host = { map() {}, unmap() {}, protect() {}, reserved: [] };
  const space = (): AddressSpace => new AddressSpace(mem, host, [], { mmapBase: 0x7f00_0000_0000 });

  it("two address spaces mapping one file's shared page meet on it; private words never do", async () => {
    const a = space();
    const b = space();
    const file = {};
    const off = sharedFilePages(mem, file, 0, 8192, () => 0);
    const atA = a.mapShared(0, 8192, 3, MAP_SHARED, off);
    // The other space maps the file's second page somewhere else.
    b.mapAnonymous(0, 3 * 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS);
    const atB = b.mapShared(0, 4096, 3, MAP_SHARED, off + 4096) - 4096;
    assert.notEqual(atA, atB, "the two mappings should be at different addresses");
    assert.equal(futexKey(a, atA + 4096 + 8, true), futexKey(b, atB + 4096 + 8, true));
    assert.notEqual(
      futexKey(a, atA + 4096, false),
      futexKey(b, atB + 4096, false),
      "private keys are per space",
    );
    // Private anonymous memory: a shared futex there is still (space, address).
    const pa = a.mapAnonymous(0, 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS);
    const pb = b.mapAnonymous(pa, 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    assert.equal(pa, pb);
    assert.notEqual(futexKey(a, pa, true), futexKey(b, pb, true));
    // A waiter in one space is woken through the other.
    const f = new FutexTable();
    const w = f.wait(task(), futexKey(a, atA + 4096, true), () => 0, 0, ~0, undefined);
    assert.equal(f.wake(futexKey(b, atB + 4096, true), 1), 1);
    assert.equal(await w, "woken");
    assert.throws(() => futexKey(a, 8, true), /EFAULT/);
    assert.throws(() => futexKey(a, atA + 2, false), /EINVAL/);
  });

  it("after fork, a MAP_SHARED|MAP_ANONYMOUS word is one futex for both; a private one is two", () => {
    const parent = space();
    const sh = parent.mapAnonymous(0, 4096, 3, MAP_SHARED | MAP_ANONYMOUS);
    const pr = parent.mapAnonymous(0, 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS);
    const child = parent.fork(host);
    assert.equal(futexKey(parent, sh, true), futexKey(child, sh, true));
    assert.notEqual(futexKey(parent, pr, true), futexKey(child, pr, true));
  });
});

describe("futex, timers and CPU time under the userkernel", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  before(async () => {
    w = await workdir();
  });
  after(() => w.remove());

  it("futex(2) in one thread: word checks, timeouts, wakes, requeues, wake_op, robust lists", async () => {
    const bin = await w.compile("futex_ops");
    const user = await assertSameAsNative(bin, [
      "wait mismatch private: EAGAIN",
      "wait mismatch shared: EAGAIN",
      "wait 30ms relative: ETIMEDOUT long enough 1",
      "wait_bitset absolute monotonic: ETIMEDOUT reached 1",
      "wait_bitset absolute realtime: ETIMEDOUT reached 1",
      "wait realtime flag relative: ENOSYS long enough 0",
      "wait bad timespec: EINVAL",
      "wait_bitset zero bitset: EINVAL",
      "wake shared unmapped: EFAULT",
      "wake private unmapped: 0",
      "cmp_requeue mismatch: EAGAIN",
      "wake_op ADD GE: 0 word2 0xf4b",
      "wake_op ANDN LT: 0 word2 0xf03",
      "wake_op OR shift: 0 word2 0x15",
      "wake_op bad cmp: ENOSYS word2 0x5",
      "shared mapping wait timeout: ETIMEDOUT",
      "get_robust_list self: 0 same 1 len 24",
      "get_robust_list no such task: ESRCH",
    ]);
    assert.deepEqual([...user.result.unimplemented.keys()], []);
  });

  it("interval timers, alarm, POSIX timers, CPU clocks and rusage behave as on Linux", async () => {
    const bin = await w.compile("timer_calls");
    const user = await assertSameAsNative(bin, [
      "getitimer real: value 4 (4.x) interval 1.250000",
      "alarm(3) after 10: 10",
      "real 20ms fired while sleeping: 1",
      "virtual fires with work: 1",
      "virtual fired after its CPU time: 1",
      "prof fires with work: 1",
      "fired: 1",
      "periodic interval: 0.010000000 value within 1",
      "settime absolute past: 0 fired 1",
      "realtime absolute fired: 1",
      "sigev_none expired, no signal: 0.000000000 1",
      "thread-directed fired: 1",
      "null sigevent gives SIGALRM: 1",
      "cpu timer not fired while sleeping: 1",
      "cpu timer fires with work: 1",
      "timer_create monotonic raw: EOPNOTSUPP",
      "clock_getcpuclockid no such pid: ESRCH",
      "pid cpu clock grows with work: 1",
      "thread cpu clock grows with work: 1",
      "pid cpu clock stays while sleeping: 1",
      "rusage self grows with work: 1",
      "rusage user time dominates: 1",
      "rusage thread covers the work: 1",
      "times utime+stime grows with work: 1",
    ]);
    assert.deepEqual([...user.result.unimplemented.keys()], []);
  });

  it("a timer's SIGALRM with the default action ends the process by signal 14", async () => {
    const bin = await w.compile("timer_calls");
    const native = await runNative(bin, ["alarm"]);
    const user = await runUser(bin, ["alarm"]);
    assert.equal(native.signal, "SIGALRM");
    assert.equal(user.signal, native.signal);
    assert.equal(user.result.waitStatus, 14);
    assert.equal(user.stdout, native.stdout);
    assert.equal(user.stdout, "alarm in 50ms, default action\n");
  });
});

/**
 * Compile test/userkernel/c/<name>.c (static, -pthread) and run it with `args` natively and
 * under the userkernel in a rootfs of its own (with /dev/shm); both must exit 0 and print
 * the same, which is returned.
 */
async function sameInRootfs(name: string, args: string[]): Promise<string> {
  const base = mkdtempSync(join(tmpdir(), "userkernel-futex-"));
  try {
    const root = join(base, "rootfs");
    mkdirSync(join(root, "dev/shm"), { recursive: true });
    const bin = join(base, name);
    await promisify(execFile)("gcc", ["-static", "-O1", "-pthread", "-o", bin, join(C_DIR, `${name}.c`)]);
    copyFileSync(bin, join(root, name));
    chmodSync(join(root, name), 0o755);
    const native = await runNative(bin, args);
    assert.equal(native.code, 0, native.stdout + native.stderr);
    const stdout = new Collector();
    const stderr = new Collector();
    const r = await runStatic({
      rootfs: root,
      binary: `/${name}`,
      argv: [`/${name}`, ...args],
      env: [],
      stdout,
      stderr,
      log: () => {},
    });
    assert.equal(r.code, 0, stdout.text() + stderr.text());
    assert.equal(stdout.text(), native.stdout);
    assert.deepEqual([...r.unimplemented.keys()], []);
    return stdout.text();
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

function includesLines(out: string, lines: string[]): void {
  for (const line of lines) assert.ok(out.includes(`${line}\n`), `missing "${line}" in:\n${out}`);
}

describe("POSIX shared memory, semaphores and timers across execve, in a rootfs", () => {
  it("shm_open, shared mappings of one file, sem_open, process-shared sem/mutex/cond as natively", async () => {
    const out = await sameInRootfs("shm", []);
    includesLines(out, [
      "b sees a: written through a",
      "a sees b: written through b",
      "offset mapping sees b: written through b",
      "a new mapping sees it: written through a",
      "a private mapping starts from it: written through a",
      "private writes stay private: written through a",
      "c sees d: through d",
      "read sees the mapping's write: through d",
      "the mapping sees write: WRITEen through b",
      "truncated away reads as zeros: 0 0 0 0",
      "shm_open gone: ENOENT",
      "sem_timedwait at 0: ETIMEDOUT",
      "value through the other handle: 1",
      "sem_trywait empty: EAGAIN",
      "cond timedwait: ETIMEDOUT",
    ]);
  });

  it("execve deletes the POSIX timers and keeps the interval timers", async () => {
    const out = await sameInRootfs("timer_calls", ["exec"]);
    includesLines(out, ["posix timer gone after exec: EINVAL", "interval timer kept after exec: 1"]);
  });
});
