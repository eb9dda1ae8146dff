// alarm(2), setitimer(2)/getitimer(2) and the POSIX timers (timer_create(2) and the rest):
// argument decoding and Linux's checks; the timers themselves are kernel/timers.ts.
import { fail } from "../errno.js";
import { cpuClock, groupNs, groupTimes } from "../kernel/cputime.js";
import type { Task } from "../kernel/task.js";
import {
  itimer,
  KTimer,
  kernelInfo,
  MONOTONIC,
  type PosixTimer,
  posixTimers,
  type SignalTarget,
  signalling,
  type TimerClock,
  timerInfo,
} from "../kernel/timers.js";
import {
  CLOCK_BOOTTIME,
  CLOCK_BOOTTIME_ALARM,
  CLOCK_MONOTONIC,
  CLOCK_MONOTONIC_COARSE,
  CLOCK_MONOTONIC_RAW,
  CLOCK_PROCESS_CPUTIME_ID,
  CLOCK_REALTIME,
  CLOCK_REALTIME_ALARM,
  CLOCK_REALTIME_COARSE,
  CLOCK_TAI,
  CLOCK_THREAD_CPUTIME_ID,
  TIMER_ABSTIME,
} from "./clocks.js";
import { addr, type Handler, int, uint } from "./types.js";

const NS = 1_000_000_000n;
const US = 1000n;

const ITIMER_REAL = 0;
const ITIMER_VIRTUAL = 1;
const ITIMER_PROF = 2;
const SIGALRM = 14;
const SIGVTALRM = 26;
const SIGPROF = 27;

/** An interval timer's clock and signal. */
function makeItimer(t: Task, which: number): KTimer {
  const group = t.group;
  const threads = (): number => group.tasks.size;
  const target: SignalTarget = { group };
  switch (which) {
    case ITIMER_REAL:
      return new KTimer(
        MONOTONIC,
        signalling(target, SIGALRM, () => kernelInfo(SIGALRM)),
      );
    case ITIMER_VIRTUAL:
      return new KTimer(
        { now: () => groupTimes(group).user, cpuThreads: threads },
        signalling(target, SIGVTALRM, () => kernelInfo(SIGVTALRM)),
      );
    default:
      return new KTimer(
        { now: () => groupNs(group), cpuThreads: threads },
        signalling(target, SIGPROF, () => kernelInfo(SIGPROF)),
      );
  }
}

/** struct timeval as ns: EINVAL unless 0 <= usec < 10^6 (and sec >= 0). */
function timevalNs(b: Buffer, at: number): bigint {
  const sec = b.readBigInt64LE(at);
  const usec = b.readBigInt64LE(at + 8);
  if (sec < 0n || usec < 0n || usec >= 1_000_000n) fail("EINVAL");
  return sec * NS + usec * US;
}

/** An itimerval from a timer's state; the value is rounded up to whole µs, so an armed timer never reads 0. */
function itimerval(v: { value: bigint; interval: bigint }): Buffer {
  const b = Buffer.alloc(32);
  const value = (v.value + US - 1n) / US;
  const interval = (v.interval + US - 1n) / US;
  b.writeBigInt64LE(interval / 1_000_000n, 0);
  b.writeBigInt64LE(interval % 1_000_000n, 8);
  b.writeBigInt64LE(value / 1_000_000n, 16);
  b.writeBigInt64LE(value % 1_000_000n, 24);
  return b;
}

function which(a: bigint | undefined): number {
  const w = int(a);
  if (w !== ITIMER_REAL && w !== ITIMER_VIRTUAL && w !== ITIMER_PROF) fail("EINVAL");
  return w;
}

export const getitimer: Handler = (t, a) => {
  const timer = itimer(t.group, which(a[0]), () => makeItimer(t, which(a[0])));
  t.mm.write(addr(a[1]), itimerval(timer.get()));
  return 0;
};

/** Arm (or, with a zero value, disarm) an interval timer; returns its old state. */
function setItimer(t: Task, w: number, value: bigint, interval: bigint): { value: bigint; interval: bigint } {
  const timer = itimer(t.group, w, () => makeItimer(t, w));
  const old = timer.get();
  const clock = w === ITIMER_REAL ? MONOTONIC.now() : undefined;
  const now = clock ?? (w === ITIMER_VIRTUAL ? groupTimes(t.group).user : groupNs(t.group));
  timer.set(value === 0n ? undefined : now + value, interval);
  return old;
}

export const setitimer: Handler = (t, a) => {
  const w = which(a[0]);
  const [nv, ov] = [addr(a[1]), addr(a[2])];
  // A null new value disarms, as Linux still allows (with a warning).
  let value = 0n;
  let interval = 0n;
  if (nv !== 0) {
    const b = t.mm.read(nv, 32);
    interval = timevalNs(b, 0);
    value = timevalNs(b, 16);
  }
  const old = setItimer(t, w, value, interval);
  if (ov !== 0) t.mm.write(ov, itimerval(old));
  return 0;
};

/** alarm(2): ITIMER_REAL in whole seconds; the old value is rounded to the nearest second, up from 0. */
export const alarm: Handler = (t, a) => {
  const old = setItimer(t, ITIMER_REAL, BigInt(uint(a[0])) * NS, 0n);
  const usecTotal = (old.value + US - 1n) / US;
  let sec = usecTotal / 1_000_000n;
  const usec = usecTotal % 1_000_000n;
  if ((sec === 0n && usec > 0n) || usec >= 500_000n) sec++;
  return sec;
};

// POSIX timers.

const SIGEV_SIGNAL = 0;
const SIGEV_NONE = 1;
const SIGEV_THREAD = 2;
const SIGEV_THREAD_ID = 4;
const SIGRTMAX = 64;
/** Linux's per-process limit is RLIMIT_SIGPENDING-ish; a fixed cap keeps a loop from filling the heap. */
const MAX_TIMERS = 4096;

/** The clock a POSIX timer runs on; EINVAL for an unknown one, EOPNOTSUPP for one with no timers. */
function timerClock(t: Task, id: number): TimerClock {
  const threads = (): number => t.group.tasks.size;
  switch (id) {
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_ALARM:
    case CLOCK_TAI: {
      const k = t.kernel;
      return { now: () => k.bootRealtimeNs + (process.hrtime.bigint() - k.bootHrtimeNs) };
    }
    case CLOCK_MONOTONIC:
    case CLOCK_BOOTTIME:
    case CLOCK_BOOTTIME_ALARM:
      return MONOTONIC;
    case CLOCK_PROCESS_CPUTIME_ID: {
      const g = t.group;
      return { now: () => groupNs(g), cpuThreads: threads };
    }
    case CLOCK_THREAD_CPUTIME_ID: {
      const read = cpuClock(t, (~0 << 3) | 4 | 2)!;
      return { now: read, cpuThreads: () => 1 };
    }
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_REALTIME_COARSE:
    case CLOCK_MONOTONIC_COARSE:
      return fail("ENOTSUP");
    default: {
      const read = id < 0 ? cpuClock(t, id, true) : undefined;
      if (!read) return fail("EINVAL");
      return { now: read, cpuThreads: (id & 4) !== 0 ? () => 1 : threads };
    }
  }
}

/** timer_create(clockid, sevp, timerid): struct sigevent is value(8), signo(4), notify(4), tid(4). */
export const timerCreate: Handler = (t, a) => {
  const clockId = int(a[0]);
  const clock = timerClock(t, clockId);
  const timers = posixTimers(t.group);
  let id = 0;
  while (timers.has(id)) id++;
  if (id >= MAX_TIMERS) fail("EAGAIN");
  let signo = SIGALRM;
  let notify = SIGEV_SIGNAL;
  let target: SignalTarget = { group: t.group };
  // The value the signal carries: the timer id by default, as Linux does without a sigevent.
  let value = BigInt(id);
  if (a[1] !== 0n) {
    const ev = t.mm.read(addr(a[1]), 20);
    value = ev.readBigUInt64LE(0);
    signo = ev.readInt32LE(8);
    notify = ev.readInt32LE(12);
    const base = notify & ~SIGEV_THREAD_ID;
    if (notify & SIGEV_THREAD_ID) {
      if (base !== SIGEV_SIGNAL) fail("EINVAL");
      const task = t.pidns.task(ev.readInt32LE(16));
      if (!task || task.group !== t.group) fail("EINVAL");
      target = { group: t.group, task };
    } else if (notify !== SIGEV_SIGNAL && notify !== SIGEV_NONE && notify !== SIGEV_THREAD) fail("EINVAL");
    if (notify !== SIGEV_NONE && (signo <= 0 || signo > SIGRTMAX)) fail("EINVAL");
  }
  const sig = signo;
  const timer = new KTimer(
    clock,
    signalling(target, sig, () => timerInfo(sig, id, value), notify === SIGEV_NONE),
  );
  // The id goes out first: a fault leaves no timer behind.
  t.mm.writeU32(addr(a[2]), id);
  const p: PosixTimer = { timer, clockId };
  timers.set(id, p);
  return 0;
};

function posixTimer(t: Task, id: bigint | undefined): PosixTimer {
  const p = posixTimers(t.group).get(int(id));
  if (!p) return fail("EINVAL");
  return p;
}

function timespec(b: Buffer, at: number, ns: bigint): void {
  b.writeBigInt64LE(ns / NS, at);
  b.writeBigInt64LE(ns % NS, at + 8);
}

/** struct itimerspec: interval, then value. */
function itimerspec(v: { value: bigint; interval: bigint }): Buffer {
  const b = Buffer.alloc(32);
  timespec(b, 0, v.interval);
  timespec(b, 16, v.value);
  return b;
}

function timespecNs(b: Buffer, at: number): bigint {
  const sec = b.readBigInt64LE(at);
  const nsec = b.readBigInt64LE(at + 8);
  if (sec < 0n || nsec < 0n || nsec >= NS) fail("EINVAL");
  return sec * NS + nsec;
}

export const timerSettime: Handler = (t, a) => {
  const p = posixTimer(t, a[0]);
  const flags = int(a[1]);
  const b = t.mm.read(addr(a[2]), 32);
  const interval = timespecNs(b, 0);
  const value = timespecNs(b, 16);
  const old = p.timer.get();
  let expiry: bigint | undefined;
  if (value !== 0n) {
    const now = p.timer.clock.now();
    expiry = flags & TIMER_ABSTIME ? value : now + value;
  }
  p.timer.set(expiry, interval);
  if (a[3] !== 0n) t.mm.write(addr(a[3]), itimerspec(old));
  return 0;
};

export const timerGettime: Handler = (t, a) => {
  const p = posixTimer(t, a[0]);
  t.mm.write(addr(a[1]), itimerspec(p.timer.get()));
  return 0;
};

export const timerGetoverrun: Handler = (t, a) => posixTimer(t, a[0]).timer.overrunLast;

export const timerDelete: Handler = (t, a) => {
  const p = posixTimer(t, a[0]);
  p.timer.cancel();
  posixTimers(t.group).delete(int(a[0]));
  return 0;
};
