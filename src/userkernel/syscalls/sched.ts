// Scheduling and resource usage as the sandbox sees them.
import { fail } from "../errno.js";
import { type CpuTimes, childrenTimes, groupTimes, threadTimes } from "../kernel/cputime.js";
import { memoryFigures } from "../mm/usage.js";
import { addr, type Handler, int, uint } from "./types.js";

export const schedYield: Handler = () => 0;

const RUSAGE_SELF = 0;
const RUSAGE_CHILDREN = -1;
const RUSAGE_THREAD = 1;
/** Clock ticks per second of times(2) (USER_HZ, fixed at 100 on x86-64). */
const TICK_NS = 10_000_000n;

function timeval(b: Buffer, at: number, ns: bigint): void {
  b.writeBigInt64LE(ns / 1_000_000_000n, at);
  b.writeBigInt64LE((ns % 1_000_000_000n) / 1000n, at + 8);
}

/**
 * struct rusage: user and system time from the stubs' CPU time (the caller's process, its
 * reaped children, or the calling thread); the counters (faults, switches) stay zero.
 */
export const getrusage: Handler = (t, a) => {
  const who = int(a[0]);
  let c: CpuTimes;
  if (who === RUSAGE_SELF) c = groupTimes(t.group);
  else if (who === RUSAGE_CHILDREN) c = childrenTimes(t.group);
  else if (who === RUSAGE_THREAD) c = threadTimes(t);
  else return fail("EINVAL");
  const b = Buffer.alloc(144);
  timeval(b, 0, c.user);
  timeval(b, 16, c.sys);
  t.mm.write(addr(a[1]), b);
  return 0;
};

/** struct tms in clock ticks (USER_HZ 100): the process's and its reaped children's times; returns ticks since boot. */
export const times: Handler = (t, a) => {
  const ticks = (process.hrtime.bigint() - t.kernel.bootHrtimeNs) / TICK_NS;
  if (a[0] !== 0n) {
    const self = groupTimes(t.group);
    const children = childrenTimes(t.group);
    const b = Buffer.alloc(32);
    b.writeBigInt64LE(self.user / TICK_NS, 0);
    b.writeBigInt64LE(self.sys / TICK_NS, 8);
    b.writeBigInt64LE(children.user / TICK_NS, 16);
    b.writeBigInt64LE(children.sys / TICK_NS, 24);
    t.mm.write(addr(a[0]), b);
  }
  return ticks;
};

export const sysinfo: Handler = (t, a) => {
  const b = Buffer.alloc(112);
  const uptime = (process.hrtime.bigint() - t.kernel.bootHrtimeNs) / 1_000_000_000n;
  b.writeBigInt64LE(uptime, 0);
  // The figures /proc/meminfo shows: the sandbox's budget, or the host's memory.
  const m = memoryFigures(t.kernel.budget);
  b.writeBigUInt64LE(BigInt(m.total), 32); // totalram
  b.writeBigUInt64LE(BigInt(m.free), 40); // freeram
  b.writeBigUInt64LE(BigInt(m.buffers), 56); // bufferram
  b.writeUInt16LE(Math.min(0xffff, t.kernel.processCount?.() ?? 1), 80); // procs
  b.writeUInt32LE(1, 104); // mem_unit
  t.mm.write(addr(a[0]), b);
  return 0;
};

export const umask: Handler = (t, a) => {
  const old = t.fs.umask;
  t.fs.umask = uint(a[0]) & 0o777;
  return old;
};
