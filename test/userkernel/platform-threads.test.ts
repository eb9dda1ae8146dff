// The platform interface on real stubs: address spaces with several host threads, the one
// event source, interrupts, faults' siginfo, FP state, and fork of an address space. The
// application code is a few hand-assembled instructions placed in the memory file, so these
// tests exercise the platform alone, without the kernel.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { after, describe, it } from "node:test";
import { dataExtents, processVmRead } from "../../src/sys/mman.js";
import { AddressSpace, MAP_PRIVATE, MAP_SHARED } from "../../src/userkernel/mm/addrspace.js";
import { MemoryFile, PAGE } from "../../src/userkernel/mm/memfile.js";
import { CpuState, type StopEvent } from "../../src/userkernel/platform/platform.js";
import { type PtraceAddressSpace, PtracePlatformFactory } from "../../src/userkernel/platform/ptrace.js";

const CODE = 0x400000;
const DATA = 0x600000;
const PROT_RX = 5;
const PROT_R = 1;
const PROT_RW = 3;

// biome-ignore format: machine code, one instruction per line
const COUNTER = [
  0x48, 0xff, 0x07, // inc qword [rdi]
  0xeb, 0xfb,       // jmp back to the inc
];
const SPIN = [0xeb, 0xfe]; // jmp $
const LOAD = [0x48, 0x8b, 0x07]; // mov rax, [rdi]
// biome-ignore format: machine code, one instruction per line
const FP = [
  0x66, 0x48, 0x0f, 0x6e, 0xc7, // movq xmm0, rdi
  0x0f, 0x05,                   // syscall
  0x66, 0x48, 0x0f, 0x7e, 0xc0, // movq rax, xmm0
  0x0f, 0x05,                   // syscall
];

const mem = new MemoryFile(4 * 2 ** 30);
const platform = new PtracePlatformFactory();
const spaces: PtraceAddressSpace[] = [];
after(() => {
  for (const s of spaces) s.release();
  mem.close();
});

/** A stub with `code` mapped at CODE and one zeroed read-write page at DATA. */
function stubWith(code: number[]): { as: PtraceAddressSpace; data: number } {
  const as = platform.newAddressSpace(mem.fd);
  spaces.push(as);
  const text = mem.alloc(PAGE);
  mem.spans(text, code.length, (b) => b.set(code));
  as.map(CODE, PAGE, PROT_RX, text);
  const data = mem.alloc(PAGE);
  as.map(DATA, PAGE, PROT_RW, data);
  return { as, data };
}

function cpuAt(rip: number, rdi: number | bigint): CpuState {
  const cpu = new CpuState();
  cpu.setEntry(rip, 0);
  cpu.regs.set("rdi", rdi);
  return cpu;
}

function u64(off: number): bigint {
  let v = 0n;
  mem.spans(off, 8, (b) => {
    v = Buffer.from(b).readBigUInt64LE(0);
  });
  return v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The process group of `pid` (field 5 of /proc/pid/stat). */
function pgrpOf(pid: number): number {
  const st = readFileSync(`/proc/${pid}/stat`, "latin1");
  return Number(st.slice(st.lastIndexOf(")") + 2).split(" ")[2]);
}

describe("ptrace platform: one process group for every stub", () => {
  it("puts the stubs in one group of their own, and starts a new one once its stubs are all gone", () => {
    const a = platform.newAddressSpace(mem.fd);
    const b = platform.newAddressSpace(mem.fd);
    try {
      assert.equal(pgrpOf(a.hostPid), a.hostPid);
      assert.equal(pgrpOf(b.hostPid), a.hostPid);
      assert.notEqual(pgrpOf(a.hostPid), pgrpOf(process.pid));
    } finally {
      a.release();
      b.release();
    }
    const c = platform.newAddressSpace(mem.fd);
    spaces.push(c);
    assert.equal(pgrpOf(c.hostPid), c.hostPid);
  });
});

describe("ptrace platform: threads of one address space", () => {
  it("runs two threads of one stub at the same time, each with its own registers", async () => {
    const { as, data } = stubWith(COUNTER);
    const a = as.newContext();
    const b = as.newContext(a);
    assert.equal(a.hostTid, as.hostPid);
    assert.notEqual(b.hostTid, a.hostTid);
    // One process, two host threads: b is a thread of the stub, not a process of its own.
    assert.deepEqual(
      readdirSync(`/proc/${as.hostPid}/task`).map(Number).sort(),
      [a.hostTid, b.hostTid].sort(),
    );
    assert.match(
      readFileSync(`/proc/${b.hostTid}/status`, "latin1"),
      new RegExp(`^Tgid:\\s+${as.hostPid}$`, "m"),
    );
    const ca = cpuAt(CODE, DATA);
    const cb = cpuAt(CODE, DATA + 8);
    const ra = a.switchTo(ca);
    const rb = b.switchTo(cb);
    // Both counters advance in each window: the threads run concurrently, neither waits
    // for the other's stop (and Node's timers keep firing meanwhile).
    let last = [u64(data), u64(data + 8)];
    for (let i = 0; i < 3; i++) {
      await sleep(150);
      const now = [u64(data), u64(data + 8)];
      assert.ok(now[0]! > last[0]!, `thread a stalled in window ${i}: ${last[0]} -> ${now[0]}`);
      assert.ok(now[1]! > last[1]!, `thread b stalled in window ${i}: ${last[1]} -> ${now[1]}`);
      last = now;
    }
    a.interrupt();
    b.interrupt();
    const [ea, eb] = await within(Promise.all([ra, rb]), 5000, "interrupting both threads");
    assert.deepEqual([ea.kind, eb.kind], ["interrupted", "interrupted"]);
    // Each saved its own registers: rdi tells them apart, rip is inside the loop.
    assert.equal(ca.regs.get("rdi"), BigInt(DATA));
    assert.equal(cb.regs.get("rdi"), BigInt(DATA + 8));
    for (const c of [ca, cb]) {
      const rip = Number(c.regs.get("rip"));
      assert.ok(rip >= CODE && rip < CODE + COUNTER.length, `rip 0x${rip.toString(16)}`);
    }
    // Stopped, the counters stand still; switched to again, they go on from where they were.
    const frozen = [u64(data), u64(data + 8)];
    await sleep(50);
    assert.deepEqual([u64(data), u64(data + 8)], frozen);
    const again = b.switchTo(cb);
    await sleep(100);
    assert.ok(u64(data + 8) > frozen[1]!);
    assert.equal(u64(data), frozen[0]);
    b.interrupt();
    assert.equal((await within(again, 5000, "interrupting b again")).kind, "interrupted");
    // A thread other than the first ends alone; the address space and its first thread stay.
    b.release();
    assert.deepEqual(readdirSync(`/proc/${as.hostPid}/task`).map(Number), [a.hostTid]);
    const back = a.switchTo(ca);
    await sleep(50);
    a.interrupt();
    assert.equal((await within(back, 5000, "interrupting a")).kind, "interrupted");
  });

  it("runs injected calls through a stopped thread while the event source waits for running ones", async () => {
    const { as, data } = stubWith(COUNTER);
    const a = as.newContext();
    const b = as.newContext(a);
    const c = as.newContext(a);
    const ra = a.switchTo(cpuAt(CODE, DATA));
    const rb = b.switchTo(cpuAt(CODE, DATA + 8));
    await sleep(20);
    // The group wait is in flight for a and b, and sees each stop of c's injected calls:
    // it must leave every one of them to c's own waitpid (a peek steals none).
    const spare = mem.alloc(PAGE);
    for (let i = 0; i < 100; i++) {
      assert.equal(as.inject(39, [], c), BigInt(as.hostPid)); // getpid
      as.map(0x700000, PAGE, PROT_RW, spare);
      as.unmap(0x700000, PAGE);
      if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    const before = [u64(data), u64(data + 8)];
    await sleep(50);
    assert.ok(u64(data) > before[0]! && u64(data + 8) > before[1]!, "a and b stopped running");
    a.interrupt();
    b.interrupt();
    const evs = await within(Promise.all([ra, rb]), 5000, "interrupting a and b");
    assert.deepEqual(
      evs.map((e) => e.kind),
      ["interrupted", "interrupted"],
    );
    mem.release(spare, PAGE);
  });

  it("release() of an address space ends its running threads' switchTo and leaves no stub", async () => {
    const { as } = stubWith(SPIN);
    const a = as.newContext();
    const b = as.newContext(a);
    const runs = [a.switchTo(cpuAt(CODE, 0)), b.switchTo(cpuAt(CODE, 0))];
    await sleep(50);
    const pid = as.hostPid;
    as.release();
    const evs = await within(Promise.all(runs), 5000, "the end of both runs");
    assert.deepEqual(
      evs.map((e) => e.kind),
      ["killed", "killed"],
    );
    // Reaped, every thread: no zombie is left under this process.
    assert.throws(() => readFileSync(`/proc/${pid}/stat`), /ENOENT/);
    as.release(); // idempotent
    assert.equal((await a.switchTo(cpuAt(CODE, 0))).kind, "killed");
  });

  it("interrupts a thread that spins without a system call, and an interrupt while stopped counts", async () => {
    const { as } = stubWith(SPIN);
    const t = as.newContext();
    const cpu = cpuAt(CODE, 0);
    const run = t.switchTo(cpu);
    await sleep(100);
    t.interrupt();
    const ev = await within(run, 5000, "the interrupt");
    assert.equal(ev.kind, "interrupted");
    assert.equal(cpu.regs.get("rip"), BigInt(CODE));
    // An interrupt that finds the thread stopped makes its next switchTo return at once,
    // so a signal raised just before a switch is not lost.
    t.interrupt();
    assert.equal((await within(t.switchTo(cpu), 1000, "the pending interrupt")).kind, "interrupted");
  });

  it("keeps many computing stubs, Node's fs calls and a further stub going at once", async () => {
    // More spinning stubs than libuv has pool threads: a design that parks a pool thread in
    // waitpid per computing tracee stalls every fs call here.
    const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const busy: Array<{ run: Promise<StopEvent>; interrupt: () => void }> = [];
    for (let i = 0; i < Math.max(6, pool + 2); i++) {
      const { as } = stubWith(SPIN);
      const t = as.newContext();
      busy.push({ run: t.switchTo(cpuAt(CODE, 0)), interrupt: () => t.interrupt() });
    }
    await sleep(100);
    const text = await within(readFile("/proc/self/status", "latin1"), 3000, "an fs read");
    assert.match(text, /^Pid:/m);
    await within(stat("/"), 3000, "an fs stat");
    // One more computing stub is served while the others compute.
    const { as, data } = stubWith(COUNTER);
    const t = as.newContext();
    const run = t.switchTo(cpuAt(CODE, DATA));
    await sleep(100);
    t.interrupt();
    assert.equal((await within(run, 3000, "interrupting the further stub")).kind, "interrupted");
    assert.ok(u64(data) > 0n);
    for (const b of busy) b.interrupt();
    const evs = await within(Promise.all(busy.map((b) => b.run)), 5000, "interrupting the busy stubs");
    assert.ok(evs.every((e) => e.kind === "interrupted"));
  });
});

describe("ptrace platform: faults and FP state", () => {
  it("reports a fault with its signal, si_code and si_addr", async () => {
    const { as } = stubWith(LOAD);
    const t = as.newContext();
    const ev = await within(t.switchTo(cpuAt(CODE, 0x12345678)), 5000, "the fault");
    assert.equal(ev.kind, "signal");
    if (ev.kind !== "signal") return;
    assert.equal(ev.signal, 11);
    assert.equal(ev.info.signo, 11);
    assert.equal(ev.info.code, 1); // SEGV_MAPERR: nothing mapped there
    assert.equal(ev.info.addr, 0x12345678n);
    assert.equal(ev.info.raw.length, 128);
    // A write to a read-only page is SEGV_ACCERR at the address written.
    const ro = stubWith(COUNTER);
    ro.as.protect(DATA, PAGE, PROT_R);
    const w = await within(ro.as.newContext().switchTo(cpuAt(CODE, DATA + 16)), 5000, "the write fault");
    assert.equal(w.kind, "signal");
    if (w.kind !== "signal") return;
    assert.equal(w.info.code, 2);
    assert.equal(w.info.addr, BigInt(DATA + 16));
  });

  it("reads FP state only when asked, and a changed FP state reaches the thread", async () => {
    const { as } = stubWith(FP);
    const t = as.newContext();
    const cpu = cpuAt(CODE, 0x1122334455667788n);
    const first = await within(t.switchTo(cpu), 5000, "the first syscall");
    assert.equal(first.kind, "syscall");
    assert.equal(cpu.fetchedFp(), undefined, "FP state fetched without being asked for");
    const fp = cpu.fpState();
    // xmm0 sits at byte 160 of the FXSAVE legacy area (the start of XSAVE's too).
    assert.ok(fp.length >= 512, `FP state of ${fp.length} bytes`);
    assert.equal(fp.readBigUInt64LE(160), 0x1122334455667788n);
    const changed = Buffer.from(fp);
    changed.writeBigUInt64LE(0xdeadbeefcafef00dn, 160);
    cpu.setFpState(changed);
    cpu.setReturn(0n);
    const second = await within(t.switchTo(cpu), 5000, "the second syscall");
    assert.equal(second.kind, "syscall");
    // The syscall instruction took rax as its number: the host reports it in orig_rax.
    assert.equal(cpu.regs.get("orig_rax"), 0xdeadbeefcafef00dn);
  });

  it("a cloned CpuState carries its FP state to another host thread", async () => {
    const { as } = stubWith(FP);
    const a = as.newContext();
    // Made before a runs, b's host FP state is not a's: only the platform can carry it over.
    const b = as.newContext(a);
    const cpu = cpuAt(CODE, 0x0102030405060708n);
    assert.equal((await within(a.switchTo(cpu), 5000, "the first syscall")).kind, "syscall");
    // What clone(2) will do for a new thread: a copy of the registers and FP state.
    const copy = cpu.clone();
    assert.equal((await within(b.switchTo(copy), 5000, "the copy's syscall")).kind, "syscall");
    assert.equal(copy.regs.get("orig_rax"), 0x0102030405060708n);
  });
});

describe("fork of an address space", () => {
  it("copies private memory, shares shared memory, and copies only pages ever written", () => {
    const parentHost = platform.newAddressSpace(mem.fd);
    spaces.push(parentHost);
    const parent = new AddressSpace(mem, parentHost, parentHost.reserved, { mmapBase: 0x7000_0000_0000 });
    const priv = parent.mapAnonymous(0, 2 * PAGE, PROT_RW, MAP_PRIVATE);
    const shared = parent.mapAnonymous(0, PAGE, PROT_RW, MAP_SHARED);
    const big = parent.mapAnonymous(0, 2 ** 30, PROT_RW, MAP_PRIVATE);
    parent.write(priv, Buffer.from("private"));
    parent.write(shared, Buffer.from("shared"));
    parent.write(big + 5 * PAGE, Buffer.from("one page"));
    const before = mem.allocated;

    const childHost = platform.newAddressSpace(mem.fd);
    spaces.push(childHost);
    const child = parent.fork(childHost);
    assert.deepEqual(
      child.list().map((v) => [v.start, v.end, v.prot, v.shared]),
      parent.list().map((v) => [v.start, v.end, v.prot, v.shared]),
    );
    // The child's stub has the same mappings with the parent's bytes in them.
    const seen = Buffer.alloc(7);
    processVmRead(childHost.hostPid, BigInt(priv), seen);
    assert.equal(seen.toString(), "private");
    assert.equal(child.read(shared, 6).toString(), "shared");
    assert.equal(child.read(big + 5 * PAGE, 8).toString(), "one page");
    // The untouched GiB cost nothing: of the child's copy only the written page holds data.
    const bigVma = child.find(big)!;
    const extents = dataExtents(mem.fd, bigVma.off, 2 ** 30);
    assert.equal(
      extents.reduce((n, [s, e]) => n + e - s, 0),
      PAGE,
    );

    // Private writes do not cross; shared ones do, both ways.
    parent.write(priv, Buffer.from("PARENT!"));
    assert.equal(child.read(priv, 7).toString(), "private");
    child.write(priv + PAGE, Buffer.from("child"));
    assert.equal(parent.read(priv + PAGE, 5).toString(), "\0\0\0\0\0");
    child.write(shared, Buffer.from("SHARED"));
    assert.equal(parent.read(shared, 6).toString(), "SHARED");
    const inParentStub = Buffer.alloc(6);
    processVmRead(parentHost.hostPid, BigInt(shared), inParentStub);
    assert.equal(inParentStub.toString(), "SHARED");

    // Releasing the child gives its private copies back and leaves the shared page to the parent.
    child.releaseAll();
    childHost.release();
    assert.equal(mem.allocated, before);
    assert.equal(parent.read(shared, 6).toString(), "SHARED");
    parent.releaseAll();
  });
});
