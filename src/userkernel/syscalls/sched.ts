// Scheduling, resource usage and futexes as a single-task sandbox sees them.
import { fail } from "../errno.js";
import { memoryFigures } from "../mm/usage.js";
import { addr, type Handler, int, uint } from "./types.js";

export const schedYield: Handler = () => 0;

const RUSAGE_SELF = 0;
const RUSAGE_CHILDREN = -1;
const RUSAGE_THREAD = 1;

/** struct rusage: user and system time, the rest zero (no page-fault accounting yet). */
export const getrusage: Handler = (t, a) => {
  const who = int(a[0]);
  if (who !== RUSAGE_SELF && who !== RUSAGE_CHILDREN && who !== RUSAGE_THREAD) fail("EINVAL");
  const b = Buffer.alloc(144);
  if (who !== RUSAGE_CHILDREN) {
    const ns = process.hrtime.bigint() - t.kernel.bootHrtimeNs;
    b.writeBigInt64LE(ns / 1_000_000_000n, 0);
    b.writeBigInt64LE((ns % 1_000_000_000n) / 1000n, 8);
  }
  t.mm.write(addr(a[1]), b);
  return 0;
};

/** struct tms in clock ticks (USER_HZ 100); returns ticks since boot. */
export const times: Handler = (t, a) => {
  const ticks = (process.hrtime.bigint() - t.kernel.bootHrtimeNs) / 10_000_000n;
  if (a[0] !== 0n) {
    const b = Buffer.alloc(32);
    b.writeBigInt64LE(ticks, 0);
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

const FUTEX_WAIT = 0;
const FUTEX_WAKE = 1;
const FUTEX_WAIT_BITSET = 9;
const FUTEX_WAKE_BITSET = 10;
const FUTEX_CMD_MASK = ~(128 | 256); // without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME

/**
 * One task: nobody else can wake a waiter, so FUTEX_WAIT on a matching value would sleep
 * forever (as on Linux with one thread); wakes find no one.
 */
export const futex: Handler = (t, a) => {
  const op = int(a[1]) & FUTEX_CMD_MASK;
  const uaddr = addr(a[0]);
  if (uaddr % 4 !== 0) fail("EINVAL");
  switch (op) {
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET:
      t.mm.readU32(uaddr);
      return 0;
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET:
      if (t.mm.readU32(uaddr) !== uint(a[2])) fail("EAGAIN");
      return fail("ENOSYS", "waiting with no other task to wake us");
    default:
      return fail("ENOSYS", `futex op ${op}`);
  }
};
