// Clocks and sleeping. The real-time clock follows the host's; the monotonic clocks are the
// host's monotonic clock; CPU-time clocks are approximated by the time since boot.
import { setTimeout as sleep } from "node:timers/promises";
import { fail } from "../errno.js";
import type { Task } from "../kernel/task.js";
import { addr, type Handler, int } from "./types.js";

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const CLOCK_PROCESS_CPUTIME_ID = 2;
const CLOCK_THREAD_CPUTIME_ID = 3;
const CLOCK_MONOTONIC_RAW = 4;
const CLOCK_REALTIME_COARSE = 5;
const CLOCK_MONOTONIC_COARSE = 6;
const CLOCK_BOOTTIME = 7;
const CLOCK_REALTIME_ALARM = 8;
const CLOCK_BOOTTIME_ALARM = 9;
const CLOCK_TAI = 11;
const TIMER_ABSTIME = 1;
const NS = 1_000_000_000n;
/** Coarse clocks tick at the host's HZ (250). */
const COARSE_RES = 4_000_000n;

function nowNs(t: Task, clock: number): bigint {
  const mono = process.hrtime.bigint();
  switch (clock) {
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_REALTIME_ALARM:
    case CLOCK_TAI:
      return t.kernel.bootRealtimeNs + (mono - t.kernel.bootHrtimeNs);
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
    case CLOCK_BOOTTIME_ALARM:
      return mono;
    case CLOCK_PROCESS_CPUTIME_ID:
    case CLOCK_THREAD_CPUTIME_ID:
      return mono - t.kernel.bootHrtimeNs;
    default:
      return fail("EINVAL");
  }
}

function timespec(ns: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigInt64LE(ns / NS, 0);
  b.writeBigInt64LE(ns % NS, 8);
  return b;
}

function readTimespec(t: Task, at: number): bigint {
  const b = t.mm.read(at, 16);
  const sec = b.readBigInt64LE(0);
  const nsec = b.readBigInt64LE(8);
  if (sec < 0n || nsec < 0n || nsec >= NS) fail("EINVAL");
  return sec * NS + nsec;
}

export const clockGettime: Handler = (t, a) => {
  const ns = nowNs(t, int(a[0]));
  t.mm.write(addr(a[1]), timespec(ns));
  return 0;
};

export const clockGetres: Handler = (t, a) => {
  const clock = int(a[0]);
  nowNs(t, clock);
  const coarse = clock === CLOCK_REALTIME_COARSE || clock === CLOCK_MONOTONIC_COARSE;
  if (a[1] !== 0n) t.mm.write(addr(a[1]), timespec(coarse ? COARSE_RES : 1n));
  return 0;
};

export const gettimeofday: Handler = (t, a) => {
  const ns = nowNs(t, CLOCK_REALTIME);
  if (a[0] !== 0n) {
    const b = Buffer.alloc(16);
    b.writeBigInt64LE(ns / NS, 0);
    b.writeBigInt64LE((ns % NS) / 1000n, 8);
    t.mm.write(addr(a[0]), b);
  }
  // struct timezone is obsolete; Linux reports UTC with no DST.
  if (a[1] !== 0n) t.mm.write(addr(a[1]), Buffer.alloc(8));
  return 0;
};

export const time: Handler = (t, a) => {
  const sec = nowNs(t, CLOCK_REALTIME) / NS;
  if (a[0] !== 0n) t.mm.writeU64(addr(a[0]), sec);
  return sec;
};

async function sleepNs(ns: bigint): Promise<void> {
  if (ns > 0n) await sleep(Number(ns / 1_000_000n) + (ns % 1_000_000n > 0n ? 1 : 0));
}

export const nanosleep: Handler = async (t, a) => {
  await sleepNs(readTimespec(t, addr(a[0])));
  return 0;
};

export const clockNanosleep: Handler = async (t, a) => {
  const [clock, flags] = [int(a[0]), int(a[1])];
  if (clock === CLOCK_THREAD_CPUTIME_ID) fail("EINVAL");
  const now = nowNs(t, clock);
  const req = readTimespec(t, addr(a[2]));
  await sleepNs(flags & TIMER_ABSTIME ? req - now : req);
  return 0;
};
