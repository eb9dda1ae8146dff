// The kernel's one blocking primitive. Anything a task can wait for (a pipe's data or room,
// a stream's input, later a futex word or a child's exit) owns a WaitQueue and notifies it
// with an event mask when its state changes; a task that finds nothing ready calls block()
// on the queues it cares about, with an optional deadline on the monotonic clock. The task
// sleeps with no timer but the deadline's and no re-check slices: it runs again only when a
// queue it waits on is notified for an event it asked for ("woken"), the deadline passes
// ("timeout"), or someone interrupts it ("interrupted": a kill, later a signal it does not
// block). Callers re-check their condition after "woken", so a notification may be spurious.
//
// Checking and blocking must happen in one synchronous stretch (no await between the check
// that found nothing ready and block()), so that no notification can fall in between.

export type BlockResult = "woken" | "timeout" | "interrupted";

/** One registration on a queue: woken by notify() of any event in `mask`. */
interface Waiter {
  readonly mask: number;
  readonly wake: () => void;
}

/** Every event: for queues whose waiters do not distinguish events. */
export const ALL_EVENTS = 0xffffffff;

export class WaitQueue {
  /** Created on first use: most queues (a pipe nobody blocks on) never get a waiter. */
  private waiters: Set<Waiter> | undefined;

  add(w: Waiter): void {
    this.waiters ??= new Set();
    this.waiters.add(w);
  }

  remove(w: Waiter): void {
    this.waiters?.delete(w);
  }

  /** Wake the waiters that asked for any event in `mask`. Cheap when nobody waits. */
  notify(mask: number = ALL_EVENTS): void {
    const ws = this.waiters;
    if (ws === undefined || ws.size === 0) return;
    // wake() unregisters (the block ends), so iterate over a copy.
    for (const w of [...ws]) if (w.mask & mask) w.wake();
  }

  /** How many waiters are registered (tests, /proc). */
  get size(): number {
    return this.waiters?.size ?? 0;
  }
}

/** The block a task sleeps in: what /proc shows as state S, and the handle interrupt() uses. */
export interface Blocked {
  /** Why it sleeps, for debugging and /proc (e.g. "pipe_read", "poll", "nanosleep"). */
  readonly reason: string;
  /** End the block with "interrupted". */
  interrupt(): void;
}

/** The part of a Task that blocking needs (kept narrow so wait.ts depends on no task shape). */
export interface Blockable {
  blockedOn: Blocked | undefined;
  /** Set once the task is dying: it must not go to sleep again. */
  readonly exitStatus: unknown;
}

/** One wait: a queue and the events on it that end the block. */
export type Wait = readonly [queue: WaitQueue, mask: number];

/** Node's timers take at most a signed 32-bit count of milliseconds (about 24.8 days). */
const MAX_TIMER_MS = 0x7fffffff;

/**
 * Sleep until a queue in `waits` is notified for an event its mask names, the monotonic
 * clock (process.hrtime.bigint()) reaches `deadlineNs`, or the task is interrupted. No waits
 * and no deadline: sleep until interrupted. A task already dying returns "interrupted" at once.
 */
export function block(
  task: Blockable,
  waits: readonly Wait[],
  deadlineNs?: bigint,
  reason = "wait",
): Promise<BlockResult> {
  if (task.exitStatus !== undefined) return Promise.resolve("interrupted");
  if (task.blockedOn !== undefined)
    throw new Error(`moat bug: a task blocks (${reason}) while already blocked (${task.blockedOn.reason})`);
  if (deadlineNs !== undefined && deadlineNs <= process.hrtime.bigint()) return Promise.resolve("timeout");
  return new Promise<BlockResult>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (r: BlockResult): void => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      for (const [q, w] of regs) q.remove(w);
      if (task.blockedOn === blocked) task.blockedOn = undefined;
      resolve(r);
    };
    const wake = (): void => finish("woken");
    // One registration per queue (each has its own mask), kept to unregister on the way out.
    const regs = waits.map(([q, mask]): [WaitQueue, Waiter] => [q, { mask, wake }]);
    for (const [q, w] of regs) q.add(w);
    const blocked: Blocked = { reason, interrupt: () => finish("interrupted") };
    task.blockedOn = blocked;
    if (deadlineNs === undefined) return;
    // One timer for the block. Node's timers count whole milliseconds from a cached loop time
    // and may fire up to a millisecond early: if so, the same block arms again for the rest.
    const arm = (): void => {
      const left = deadlineNs - process.hrtime.bigint();
      if (left <= 0n) {
        finish("timeout");
        return;
      }
      const ms = Number(left / 1_000_000n) + (left % 1_000_000n > 0n ? 1 : 0);
      timer = setTimeout(arm, Math.min(ms, MAX_TIMER_MS));
    };
    arm();
  });
}
