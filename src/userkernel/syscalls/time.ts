// Clocks and sleeping. The real-time clock follows the host's; the monotonic clocks are the
// host's monotonic clock; CPU-time clocks are the CPU time the host spent running the
// application's process (never the kernel's own time serving it).
import { fail } from "../errno.js";
import { cpuClock, groupNs, threadNs } from "../kernel/cputime.js";
import type { Task } from "../kernel/task.js";
import { block } from "../kernel/wait.js";
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
import { addr, type Handler, int } from "./types.js";

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
      return groupNs(t.group);
    case CLOCK_THREAD_CPUTIME_ID:
      return threadNs(t);
    default: {
      // A CPU clock of clock_getcpuclockid / pthread_getcpuclockid (negative ids).
      const read = clock < 0 ? cpuClock(t, clock) : undefined;
      return read ? read() : fail("EINVAL");
    }
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

/**
 * Sleep until the monotonic clock reaches `deadline` (a block with no queue: only its one
 * timer or an interruption ends it). Interrupted: EINTR, after writing the time left to `rem`
 * when the caller asked for it (nanosleep, relative clock_nanosleep).
 */
async function sleepUntil(t: Task, deadline: bigint, rem: number, resumable = true): Promise<number> {
  if ((await block(t, [], deadline, "nanosleep")) !== "interrupted") return 0;
  if (rem !== 0) {
    const left = deadline - process.hrtime.bigint();
    t.mm.write(rem, timespec(left > 0n ? left : 0n));
  }
  // Restarted without a handler (a stop, an ignored signal): on to the same deadline.
  if (resumable) t.restartBlock = () => sleepUntil(t, deadline, rem);
  return fail("EINTR");
}

/** restart_syscall: the interrupted call's restart block, or EINTR when there is none. */
export const restartSyscall: Handler = (t) => {
  const block = t.restartBlock;
  t.restartBlock = undefined;
  return block ? block() : fail("EINTR");
};

export const nanosleep: Handler = (t, a) =>
  sleepUntil(t, process.hrtime.bigint() + readTimespec(t, addr(a[0])), addr(a[1]));

/** Clocks Linux cannot sleep on (no nsleep in their k_clock). */
const NO_SLEEP = new Set([
  CLOCK_THREAD_CPUTIME_ID,
  CLOCK_MONOTONIC_RAW,
  CLOCK_REALTIME_COARSE,
  CLOCK_MONOTONIC_COARSE,
]);

/**
 * clock_nanosleep: the request becomes a deadline on the monotonic clock (an absolute time on
 * another clock is converted once: a later step of the real-time clock does not move it). An
 * absolute sleep writes nothing to rem, as on Linux.
 */
export const clockNanosleep: Handler = (t, a) => {
  const [clock, flags] = [int(a[0]), int(a[1])];
  // Linux checks the clock, then copies the request in, then validates it.
  const now = nowNs(t, clock);
  if (NO_SLEEP.has(clock)) fail("ENOTSUP");
  const req = readTimespec(t, addr(a[2]));
  const abs = (flags & TIMER_ABSTIME) !== 0;
  const mono = process.hrtime.bigint();
  // An absolute sleep restarts from its arguments (ERESTARTNOHAND); a relative one resumes.
  return sleepUntil(t, mono + (abs ? req - now : req), abs ? 0 : addr(a[3]), !abs);
};
