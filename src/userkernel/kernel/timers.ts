// Interval timers (setitimer, alarm) and POSIX timers (timer_create): a timer on a clock that
// expires once or periodically and then queues a signal (or, SIGEV_NONE, only counts).
//
// Timers on the wall clocks (CLOCK_REALTIME, MONOTONIC, BOOTTIME; ITIMER_REAL) run on the
// host's monotonic clock with one Node timer each; an absolute real-time expiry is converted
// once (the sandbox's real-time clock never steps). Timers on CPU clocks (ITIMER_VIRTUAL and
// ITIMER_PROF, process and thread CPU-time clocks) sample the stubs' CPU time: the next look
// is when the clock could have reached the expiry at the earliest (the time left divided by
// the threads that could be running), so a computing process is checked rarely and fires
// within one sample of its expiry.
//
// Overruns: an expiry whose previous signal still waits in the pending set is counted as an
// overrun instead of queueing a second signal (Linux's preallocated timer sigqueue entry);
// timer_getoverrun reports the overruns counted before the last signal was queued, which on
// Linux is set when that signal is dequeued.
import { bit, IGNORED_BY_DEFAULT, killGroup, STOPPING } from "./signals.js";
import { SIG_DFL, SIG_IGN } from "./signals-state.js";
import type { Task } from "./task.js";
import type { ThreadGroup } from "./thread-group.js";

/** The longest a sampled CPU-clock timer waits between looks while its clock stands still. */
const MAX_IDLE_NS = 100_000_000n;

/** Node's timers take at most a signed 32-bit count of milliseconds. */
const MAX_TIMER_MS = 0x7fffffff;

/** Where a timer's signal goes: its process, or one thread of it (SIGEV_THREAD_ID). */
export interface SignalTarget {
  group: ThreadGroup<Task>;
  task?: Task;
}

/**
 * Queue `sig` for `target` as the kernel's own signals are queued: pending on the thread or
 * the process, taking its default action there. A default action that terminates ends the
 * process at once; an ignored one is discarded; a caught or blocked one waits in the pending
 * set for the signal stage. Returns false when the signal was discarded.
 *
 * `info` is the siginfo the signal carries (SI_TIMER with the timer id and overrun, or
 * SI_KERNEL for the interval timers): it goes with the signal once the signal stage queues
 * siginfo (its sendSignal takes the same target, signal and info).
 */
export function queueSignal(target: SignalTarget, sig: number, _info: Buffer): boolean {
  const { group, task } = target;
  if (group.exitStatus) return false;
  const any = task ?? group.leader;
  if (!any) return false;
  const handler = any.sighand.handler(sig);
  const blocked = task
    ? (task.sigmask & bit(sig)) !== 0n
    : [...group.tasks].every((t) => t.sigmask & bit(sig));
  // As Linux's sig_ignored: a blocked signal is queued even if ignored (it may be unignored first).
  if (!blocked && (handler === SIG_IGN || (handler === SIG_DFL && IGNORED_BY_DEFAULT.has(sig)))) return false;
  if (task) task.pending |= bit(sig);
  else group.pending |= bit(sig);
  if (!blocked && handler === SIG_DFL && !STOPPING.has(sig)) killGroup(group, { signal: sig });
  return true;
}

const SI_KERNEL = 0x80;
const SI_TIMER = -2;

/** A siginfo_t of a timer: SI_TIMER with _timer's tid (the timer id), overrun and value. */
export function timerInfo(sig: number, id: number, value: bigint): Buffer {
  const b = Buffer.alloc(128);
  b.writeInt32LE(sig, 0);
  b.writeInt32LE(SI_TIMER, 8);
  b.writeInt32LE(id, 16);
  b.writeBigUInt64LE(value, 24);
  return b;
}

/** The siginfo of an interval timer's signal (Linux sends it as the kernel: SI_KERNEL). */
export function kernelInfo(sig: number): Buffer {
  const b = Buffer.alloc(128);
  b.writeInt32LE(sig, 0);
  b.writeInt32LE(SI_KERNEL, 8);
  return b;
}

/** Is `sig` still waiting in `target`'s pending set? */
function stillPending(target: SignalTarget, sig: number): boolean {
  return ((target.task ? target.task.pending : target.group.pending) & bit(sig)) !== 0n;
}

/** A clock a timer runs on: `cpu` clocks are sampled, the others run on the monotonic clock. */
export interface TimerClock {
  now(): bigint;
  /** CPU clock: how many threads can advance it at once (for the sampling interval). */
  cpuThreads?: () => number;
}

/**
 * What a timer does at each expiry (`missed`: the further intervals that passed before the
 * timer was looked at); returns false to count overruns instead of signalling.
 */
export type Expiry = (missed: number) => boolean;

/**
 * One timer: armed with an expiry on its clock and an optional interval. Fires `onExpire`
 * at each expiry; a late look covers every interval it missed (those count as overruns).
 */
export class KTimer {
  /** The next expiry on the clock, or undefined when disarmed. */
  private expiry: bigint | undefined;
  private interval = 0n;
  private handle: NodeJS.Timeout | undefined;
  /** CPU clocks: the last reading, and how long the clock has stood still (for backing off). */
  private lastNow: bigint | undefined;
  private idleNs = 0n;
  /** Expiries not signalled since the last one that was (timer_getoverrun's count comes from it). */
  overrun = 0;
  overrunLast = 0;

  constructor(
    readonly clock: TimerClock,
    private readonly onExpire: Expiry,
  ) {}

  /** Arm at `expiry` (absolute on the clock) repeating every `interval`; `expiry` undefined disarms. */
  set(expiry: bigint | undefined, interval: bigint): void {
    this.cancel();
    this.expiry = expiry;
    this.interval = expiry === undefined ? 0n : interval;
    this.overrun = 0;
    this.overrunLast = 0;
    if (expiry !== undefined) this.schedule();
  }

  /** Time to the next expiry (0 when disarmed) and the interval. */
  get(): { value: bigint; interval: bigint } {
    if (this.expiry === undefined) return { value: 0n, interval: this.interval };
    const left = this.expiry - this.clock.now();
    // Due but not looked at yet: Linux reports the smallest non-zero time for a timer still armed.
    return { value: left > 0n ? left : 1n, interval: this.interval };
  }

  get armed(): boolean {
    return this.expiry !== undefined;
  }

  cancel(): void {
    if (this.handle !== undefined) clearTimeout(this.handle);
    this.handle = undefined;
    this.expiry = undefined;
  }

  private schedule(): void {
    const expiry = this.expiry;
    if (expiry === undefined) return;
    const left = expiry - this.clock.now();
    if (left <= 0n) {
      this.fire();
      return;
    }
    let wait = left;
    if (this.clock.cpuThreads) {
      const threads = BigInt(Math.max(1, this.clock.cpuThreads()));
      // A CPU clock that did not move since the last look (the process sleeps) is looked at
      // less and less often, up to every 100 ms, rather than every time left.
      const now = expiry - left;
      this.idleNs = now === this.lastNow ? (this.idleNs === 0n ? 1_000_000n : this.idleNs * 2n) : 0n;
      if (this.idleNs > MAX_IDLE_NS) this.idleNs = MAX_IDLE_NS;
      this.lastNow = now;
      wait = left / threads;
      if (wait < this.idleNs) wait = this.idleNs;
    }
    const ms = Math.max(1, Number(wait / 1_000_000n) + (wait % 1_000_000n > 0n ? 1 : 0));
    this.handle = setTimeout(
      () => {
        this.handle = undefined;
        this.schedule();
      },
      Math.min(ms, MAX_TIMER_MS),
    );
  }

  private fire(): void {
    const expiry = this.expiry!;
    const now = this.clock.now();
    let missed = 0;
    if (this.interval > 0n) {
      const late = now - expiry;
      const n = late / this.interval;
      missed = Number(n > 0x7fffffffn ? 0x7fffffffn : n);
      this.expiry = expiry + (n + 1n) * this.interval;
    } else this.expiry = undefined;
    if (this.onExpire(missed)) {
      this.overrunLast = Math.min(0x7fffffff, this.overrun);
      this.overrun = missed;
    } else this.overrun = Math.min(0x7fffffff, this.overrun + 1 + missed);
    if (this.expiry !== undefined) this.schedule();
  }
}

/**
 * The expiry action of a signalling timer: queue `sig` with the info `info()` makes, or, if
 * the last one still waits, count the overruns into that info's si_overrun (Linux fills it in
 * when the signal is taken; here it is kept current while it waits). `none`: SIGEV_NONE.
 */
export function signalling(target: SignalTarget, sig: number, info: () => Buffer, none = false): Expiry {
  let last: Buffer | undefined;
  let overrun = 0;
  return (missed) => {
    if (none) return true;
    if (last && stillPending(target, sig)) {
      overrun = Math.min(0x7fffffff, overrun + 1 + missed);
      if (last.readInt32LE(8) === SI_TIMER) last.writeInt32LE(overrun, 20);
      return false;
    }
    const b = info();
    overrun = missed;
    if (b.readInt32LE(8) === SI_TIMER) b.writeInt32LE(overrun, 20);
    last = queueSignal(target, sig, b) ? b : undefined;
    return true;
  };
}

/** The monotonic clock as a timer clock. */
export const MONOTONIC: TimerClock = { now: () => process.hrtime.bigint() };

// Per process: the three interval timers and the POSIX timers. A process's timers end with
// it; execve keeps the interval timers and deletes the POSIX ones, fork gives the child none.
interface GroupTimers {
  itimers: Map<number, KTimer>;
  posix: Map<number, PosixTimer>;
}

export interface PosixTimer {
  readonly timer: KTimer;
  readonly clockId: number;
}

const byGroup = new WeakMap<ThreadGroup<Task>, GroupTimers>();

function timersOf(group: ThreadGroup<Task>): GroupTimers {
  let g = byGroup.get(group);
  if (!g) {
    const made: GroupTimers = { itimers: new Map(), posix: new Map() };
    g = made;
    byGroup.set(group, made);
    // Nothing may fire for a process that is gone.
    void group.whenZombie().then(() => {
      for (const t of made.itimers.values()) t.cancel();
      for (const p of made.posix.values()) p.timer.cancel();
      made.posix.clear();
    });
  }
  return g;
}

/** The interval timer `which` of `group`, made with `make` on first use. */
export function itimer(group: ThreadGroup<Task>, which: number, make: () => KTimer): KTimer {
  const g = timersOf(group);
  let t = g.itimers.get(which);
  if (!t) {
    t = make();
    g.itimers.set(which, t);
  }
  return t;
}

/** The process's POSIX timers, by id. */
export function posixTimers(group: ThreadGroup<Task>): Map<number, PosixTimer> {
  return timersOf(group).posix;
}

/** execve: the POSIX timers go, the interval timers stay (as on Linux). */
export function execTimers(group: ThreadGroup<Task>): void {
  const g = byGroup.get(group);
  if (!g) return;
  for (const p of g.posix.values()) p.timer.cancel();
  g.posix.clear();
}
