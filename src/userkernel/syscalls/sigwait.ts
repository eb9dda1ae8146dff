// Waiting for signals: rt_sigsuspend and pause (until a handler runs or the process ends:
// always EINTR) and rt_sigtimedwait (takes a pending signal of a set out of the queues
// without running its handler, with an optional timeout). Each sleeps in the kernel's one
// blocking primitive; sending a signal the task can take interrupts the block.
import { fail, KernelError } from "../errno.js";
import { bit, dequeuePending, hasDeliverable, SYNCHRONOUS, UNBLOCKABLE } from "../kernel/signals.js";
import type { Task } from "../kernel/task.js";
import { block } from "../kernel/wait.js";
import { addr, type Handler } from "./types.js";

const SIGSET_SIZE = 8n;
const NS = 1_000_000_000n;

/** Sleep until `t` has a signal to take (or dies); the EINTR a handler then follows. */
async function sleepForSignal(t: Task, reason: string): Promise<number> {
  while (!hasDeliverable(t) && t.exitStatus === undefined && t.group.stopped === undefined)
    await block(t, [], undefined, reason);
  return fail("EINTR");
}

/**
 * rt_sigsuspend: the mask becomes `mask` until a signal is delivered; the handler's frame
 * saves the caller's mask, which rt_sigreturn restores (Linux's saved_sigmask).
 */
export const rtSigsuspend: Handler = (t, a) => {
  if (a[1] !== SIGSET_SIZE) fail("EINVAL");
  const mask = t.mm.readU64(addr(a[0]));
  t.savedSigmask = t.sigmask;
  t.sigmask = mask & ~UNBLOCKABLE;
  return sleepForSignal(t, "sigsuspend");
};

export const pause: Handler = (t) => sleepForSignal(t, "pause");

function readTimeout(t: Task, p: number): bigint {
  const b = t.mm.read(p, 16);
  const sec = b.readBigInt64LE(0);
  const nsec = b.readBigInt64LE(8);
  if (sec < 0n || nsec < 0n || nsec >= NS) fail("EINVAL");
  return sec * NS + nsec;
}

/** The lowest pending signal of `want` (faults first), from the task's set, then the group's. */
function pendingOf(t: Task, want: bigint): number | undefined {
  for (const set of [t.pending, t.group.pending]) {
    const ready = set & want;
    if (ready === 0n) continue;
    for (const sig of SYNCHRONOUS) if (ready & bit(sig)) return sig;
    for (let sig = 1; sig <= 64; sig++) if (ready & bit(sig)) return sig;
  }
  return undefined;
}

/**
 * rt_sigtimedwait (sigwaitinfo, sigtimedwait, sigwait): the waited signals count as unblocked
 * while the task sleeps (so they wake it and a fatal one does not kill), another signal it
 * does not block ends the wait with EINTR, the timeout with EAGAIN.
 */
export const rtSigtimedwait: Handler = async (t, a) => {
  const [setp, infop, timeoutp] = [addr(a[0]), addr(a[1]), addr(a[2])];
  if (a[3] !== SIGSET_SIZE) fail("EINVAL");
  const want = t.mm.readU64(setp) & ~UNBLOCKABLE;
  const deadline = timeoutp !== 0 ? process.hrtime.bigint() + readTimeout(t, timeoutp) : undefined;
  for (;;) {
    const sig = pendingOf(t, want);
    if (sig !== undefined) {
      const info = dequeuePending(t, sig);
      if (infop !== 0) t.mm.write(infop, info);
      return sig;
    }
    if (t.exitStatus !== undefined) fail("EINTR");
    // Another signal it can take: its handler runs, and this call fails.
    if (hasDeliverable(t) || t.group.stopped !== undefined) fail("EINTR");
    t.sigwaiting = want;
    try {
      if ((await block(t, [], deadline, "sigtimedwait")) === "timeout") {
        const late = pendingOf(t, want);
        if (late === undefined) fail("EAGAIN");
      }
    } finally {
      t.sigwaiting = 0n;
    }
  }
};

/**
 * ppoll and pselect6: the mask at `maskp` (when given) replaces the task's while `run` waits.
 * Interrupted (EINTR), the caller's mask comes back only after the handler's frame saved it
 * (Linux's restore_saved_sigmask_unless), so the signal the temporary mask let in runs.
 */
export function withSigmask(
  t: Task,
  maskp: number,
  size: bigint,
  run: () => Promise<number>,
): Promise<number> {
  if (maskp === 0) return run();
  if (size !== SIGSET_SIZE) fail("EINVAL");
  const old = t.sigmask;
  t.sigmask = t.mm.readU64(maskp) & ~UNBLOCKABLE;
  let waiting: Promise<number>;
  try {
    waiting = run();
  } catch (e) {
    t.sigmask = old;
    throw e;
  }
  return waiting.then(
    (v) => {
      t.sigmask = old;
      return v;
    },
    (e: unknown) => {
      if (e instanceof KernelError && e.code === "EINTR") t.savedSigmask = old;
      else t.sigmask = old;
      throw e;
    },
  );
}
