// Signals as the kernel decides them (Linux's kernel/signal.c is the model): each signal's
// default action, the pending sets (a task's own and its thread group's, each a mask plus a
// queue of siginfos: a standard signal coalesces, a real-time one queues up to
// RLIMIT_SIGPENDING), sending (which wakes a task that can take the signal, and ends the group
// at once when the signal is fatal), the run loop's delivery stage (a handler frame on the
// application's stack, or the default action: terminate, core, ignore, stop, continue) and
// the faults the platform reports, which are forced on the task as Linux's force_sig does.
import { KernelError } from "../errno.js";
import { type Delivery, setupFrame } from "./sigframe.js";
import { SIG_DFL, SIG_IGN } from "./signals-state.js";
import { settleRestart } from "./syscall-restart.js";
import type { Task } from "./task.js";
import type { ExitStatus, ThreadGroup } from "./thread-group.js";

export const SIGKILL = 9;
export const SIGSEGV = 11;
export const SIGCHLD = 17;
export const SIGCONT = 18;
export const SIGSTOP = 19;
export const SIGRTMIN = 32;
export const NSIG = 64;
const RLIMIT_SIGPENDING = 11;

/** Default action "ignore" (signal(7)). */
export const IGNORED_BY_DEFAULT = new Set([SIGCHLD, SIGCONT, 23 /* SIGURG */, 28 /* SIGWINCH */]);
/** Default action "stop". */
export const STOPPING = new Set([SIGSTOP, 20 /* SIGTSTP */, 21 /* SIGTTIN */, 22 /* SIGTTOU */]);
/** Default action "core": terminate, with a core dump where RLIMIT_CORE allows one. */
export const CORE = new Set([3, 4, 5, 6, 7, 8, 11, 24, 25, 31]);
const RLIMIT_CORE = 4;

/**
 * How a signal's default action ends `g`. A core signal sets the wait status's core bit
 * (WCOREDUMP) where Linux would dump one, with a core_pattern of a file: RLIMIT_CORE above 0
 * (0 by default, so no bit). The userkernel never writes the core file itself.
 */
function deathBy(g: ThreadGroup<Task>, sig: number): ExitStatus {
  if (!CORE.has(sig)) return { signal: sig };
  const limit = g.rlimits.get(RLIMIT_CORE)?.[0] ?? 0n;
  return limit > 0n ? { signal: sig, core: true } : { signal: sig };
}
/** Synchronous signals (faults): dequeued before any other, as Linux's SYNCHRONOUS_MASK. */
export const SYNCHRONOUS = [11, 7, 4, 5, 8, 31];

export const bit = (sig: number): bigint => 1n << BigInt(sig - 1);
/** SIGKILL and SIGSTOP can never be blocked, caught or ignored. */
export const UNBLOCKABLE = bit(SIGKILL) | bit(SIGSTOP);

// sa_flags
export const SA_NOCLDSTOP = 0x1n;
export const SA_SIGINFO = 0x4n;
export const SA_RESTART = 0x1000_0000n;
export const SA_NODEFER = 0x4000_0000n;
export const SA_RESETHAND = 0x8000_0000n;

// si_code values
export const SI_USER = 0;
export const SI_KERNEL = 0x80;
export const SI_QUEUE = -1;
export const SI_TKILL = -6;
export const CLD_EXITED = 1;
export const CLD_KILLED = 2;
export const CLD_DUMPED = 3;
export const CLD_STOPPED = 5;
export const CLD_CONTINUED = 6;

/** A pending set: which signals wait, and the siginfo of each queued instance. */
export interface PendingSet {
  pending: bigint;
  readonly pendingInfo: Map<number, Buffer[]>;
}

/** A siginfo_t (128 bytes): signo, errno 0, code, and the fields its kind has. */
export function makeInfo(
  sig: number,
  code: number,
  f: { pid?: number; uid?: number; status?: number; value?: bigint; addr?: bigint } = {},
): Buffer {
  const b = Buffer.alloc(128);
  b.writeInt32LE(sig, 0);
  b.writeInt32LE(code, 8);
  if (f.addr !== undefined) b.writeBigUInt64LE(f.addr, 16);
  else {
    b.writeInt32LE(f.pid ?? 0, 16);
    b.writeUInt32LE(f.uid ?? 0, 20);
    if (f.status !== undefined) b.writeInt32LE(f.status, 24);
    if (f.value !== undefined) b.writeBigUInt64LE(f.value, 24);
  }
  return b;
}

/** The info of a signal sent by `t` with kill (SI_USER) or tgkill/tkill (SI_TKILL). */
export function senderInfo(t: Task, sig: number, code: number): Buffer {
  return makeInfo(sig, code, { pid: t.pid, uid: t.creds.uid });
}

/** Is `sig` discarded at sending: ignored, and not blocked by `t` (blocked ones wait). */
function ignoredBy(t: Task, sig: number): boolean {
  if (t.sigmask & bit(sig)) return false;
  const h = t.sighand.handler(sig);
  return h === SIG_IGN || (h === SIG_DFL && IGNORED_BY_DEFAULT.has(sig));
}

/** Would the default action end the process (terminate or core)? */
function fatalByDefault(sig: number): boolean {
  return sig === SIGKILL || !(IGNORED_BY_DEFAULT.has(sig) || STOPPING.has(sig));
}

/** How many real-time signals wait queued in every set of the kernel's group `g`. */
function queuedRt(g: ThreadGroup<Task>): number {
  let n = 0;
  const count = (s: PendingSet): void => {
    for (const [sig, q] of s.pendingInfo) if (sig >= SIGRTMIN) n += q.length;
  };
  count(g);
  for (const t of g.tasks) count(t);
  return n;
}

/**
 * Add `sig` with `info` to `set`. A standard signal already pending is dropped (they do not
 * queue); a real-time one queues each instance up to RLIMIT_SIGPENDING (counted over the
 * group's sets). Beyond it, as Linux does, a sigqueue (`limited`) fails with EAGAIN, and a
 * kill or the kernel's own signal marks the signal pending without its info if it is not
 * pending already (one instance gets through; none is added).
 */
function enqueue(set: PendingSet, g: ThreadGroup<Task>, sig: number, info: Buffer, limited: boolean): void {
  const b = bit(sig);
  if (sig < SIGRTMIN && set.pending & b) return;
  const q = set.pendingInfo.get(sig) ?? [];
  const limit = g.rlimits.get(RLIMIT_SIGPENDING)?.[0] ?? 4096n;
  if (sig >= SIGRTMIN && BigInt(queuedRt(g)) >= limit) {
    if (limited) throw new KernelError("EAGAIN", "RLIMIT_SIGPENDING reached");
    if (set.pending & b) return;
  } else q.push(info);
  set.pendingInfo.set(sig, q);
  set.pending |= b;
}

/**
 * Take one instance of `sig` out of `set`: its info, or, for one that came without (set by
 * a bit alone, or beyond RLIMIT_SIGPENDING), Linux's zeroed SI_USER info.
 */
function dequeue(set: PendingSet, sig: number): Buffer {
  const q = set.pendingInfo.get(sig);
  const info = q?.shift() ?? makeInfo(sig, SI_USER);
  if (!q || q.length === 0) {
    set.pendingInfo.delete(sig);
    set.pending &= ~bit(sig);
  }
  return info;
}

/** Discard every pending instance of the signals in `mask` from `set`. */
export function flush(set: PendingSet, mask: bigint): void {
  set.pending &= ~mask;
  for (const sig of [...set.pendingInfo.keys()]) if (mask & bit(sig)) set.pendingInfo.delete(sig);
}

/** Discard `mask` from the group's set and every task's. */
export function flushGroup(g: ThreadGroup<Task>, mask: bigint): void {
  flush(g, mask);
  for (const t of g.tasks) flush(t, mask);
}

/**
 * The group ends with `status`: every task of it is interrupted and leaves at its next
 * kernel entry (a blocked syscall returns at once).
 */
export function killGroup(group: ThreadGroup<Task>, status: ExitStatus): void {
  group.exit(status);
  group.stopped = undefined;
  group.resumeStopped();
  for (const t of group.tasks) t.interrupt();
}

/** Wake `t` because a signal waits for it: a block ends with "interrupted", running code stops. */
export function signalWake(t: Task): void {
  t.signalWake();
}

/**
 * Send `sig` with `info` to a thread group (kill, rt_sigqueueinfo, from outside) or to one task
 * (tgkill, tkill, rt_tgsigqueueinfo, the kernel's SIGPIPE). As Linux's send_signal: a stop
 * signal discards pending SIGCONTs and a SIGCONT the pending stops (and resumes a stopped
 * group); an ignored signal is dropped; one whose default action ends the process ends it at
 * once unless every candidate task blocks it; otherwise a task that does not block it is woken
 * to take it. `limited`: a sigqueue, which fails with EAGAIN over RLIMIT_SIGPENDING.
 */
export function sendSignal(
  target: { group: ThreadGroup<Task> } | { task: Task },
  sig: number,
  info: Buffer,
  limited = false,
  fromOutside = false,
): void {
  const g = "task" in target ? target.task.group : target.group;
  if (sig === 0) return;
  if (g.exitStatus) return;
  const any = "task" in target ? target.task : g.leader;
  if (!any) return;
  if (STOPPING.has(sig)) flushGroup(g, bit(SIGCONT));
  if (sig === SIGCONT) {
    flushGroup(
      g,
      [...STOPPING].reduce((m, s) => m | bit(s), 0n),
    );
    continueGroup(g);
  }
  // The namespace's init ignores what it has no handler for; from outside, SIGKILL and
  // SIGSTOP still act (Linux's sig_ignored). A blocked signal (or one rt_sigtimedwait waits
  // for) is kept: the handler may change before it is taken. The side effects above happen anyway.
  if (
    g.unkillable &&
    any.sighand.handler(sig) === SIG_DFL &&
    !((any.sigmask | any.sigwaiting) & bit(sig)) &&
    !(fromOutside && (sig === SIGKILL || sig === SIGSTOP))
  )
    return;
  if (sig === SIGKILL) {
    killGroup(g, { signal: SIGKILL });
    return;
  }
  if (ignoredBy(any, sig)) return;
  if ("task" in target) enqueue(target.task, g, sig, info, limited);
  else enqueue(g, g, sig, info, limited);
  // Who takes it: the target thread, or a thread of the group that does not block it (or
  // waits for it in rt_sigtimedwait, which takes it out of the queue instead).
  const takers = "task" in target ? [target.task] : [...g.tasks];
  const b = bit(sig);
  const waiter = takers.find((t) => t.sigwaiting & b);
  if (waiter) {
    signalWake(waiter);
    return;
  }
  const taker = takers.find((t) => !(t.sigmask & b));
  if (!taker) return;
  const h = taker.sighand.handler(sig);
  if (h === SIG_DFL && fatalByDefault(sig)) {
    // A fatal signal ends the group at once, from whichever thread (Linux's complete_signal).
    killGroup(g, deathBy(g, sig));
    return;
  }
  signalWake(taker);
  // A stop signal must stop every thread: each looks at the group's state at its next entry.
  if (STOPPING.has(sig) && h === SIG_DFL) for (const t of g.tasks) signalWake(t);
}

/** SIGCONT: a stopped group runs again, and its parent learns so (CLD_CONTINUED). */
function continueGroup(g: ThreadGroup<Task>): void {
  if (g.stopped === undefined) return;
  g.stopped = undefined;
  g.resumeStopped();
  notifyParent(g, CLD_CONTINUED, SIGCONT);
}

/** The group stopped (a stop signal's default action): every task waits for SIGCONT or SIGKILL. */
function stopGroup(g: ThreadGroup<Task>, sig: number): void {
  if (g.stopped !== undefined) return;
  g.stopped = sig;
  for (const t of g.tasks) signalWake(t);
  notifyParent(g, CLD_STOPPED, sig);
}

/**
 * The parent hears of a stop or continue: SIGCHLD with CLD_STOPPED/CLD_CONTINUED unless its
 * SIGCHLD action has SA_NOCLDSTOP, and its waiters (wait4 with WUNTRACED/WCONTINUED) wake.
 */
function notifyParent(g: ThreadGroup<Task>, code: number, sig: number): void {
  const parent = g.parent;
  const pl = parent?.leader;
  if (!parent || !pl || parent.exitStatus) return;
  // What wait4 with WUNTRACED / WCONTINUED reports once (waitchild.ts reads these); written
  // here rather than through waitchild's hooks, which would close an import cycle.
  if (code === CLD_STOPPED) {
    g.stopReport = sig;
    g.continueReport = false;
  } else {
    g.stopReport = undefined;
    g.continueReport = true;
  }
  parent.childChanged();
  const act = pl.sighand.actions.get(SIGCHLD);
  if (act && act.flags & SA_NOCLDSTOP) return;
  const leader = g.leader;
  sendSignal(
    { group: parent },
    SIGCHLD,
    makeInfo(SIGCHLD, code, { pid: g.tgid, uid: leader?.creds.uid ?? 0, status: sig }),
  );
}

/**
 * A fault the platform reported (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP with the host's
 * siginfo) becomes the task's signal, forced as Linux's force_sig_info does: if the task
 * blocks or ignores it, the default action is put back (and it is unblocked), so it kills.
 */
export function forceFault(t: Task, sig: number, info: Buffer): void {
  const act = t.sighand.actions.get(sig);
  const blocked = (t.sigmask & bit(sig)) !== 0n;
  if (blocked || act?.handler === SIG_IGN) {
    t.sighand.actions.delete(sig);
    t.sigmask &= ~bit(sig);
  }
  // A fault with no handler kills even the namespace's init.
  if (t.sighand.handler(sig) === SIG_DFL) t.group.unkillable = false;
  const b = Buffer.alloc(128);
  info.copy(b, 0, 0, 128);
  b.writeInt32LE(sig, 0);
  // The fault goes before anything queued: it is the thread's own and synchronous.
  const q = t.pendingInfo.get(sig) ?? [];
  q.unshift(b);
  t.pendingInfo.set(sig, q);
  t.pending |= bit(sig);
}

/** Does `t` have a pending signal it does not block (one the delivery stage acts on)? */
export function hasDeliverable(t: Task): boolean {
  return ((t.pending | t.group.pending) & ~t.sigmask) !== 0n;
}

/** Take one instance of `sig` out of the task's pending set, or else its group's: its info. */
export function dequeuePending(t: Task, sig: number): Buffer {
  return dequeue(t.pending & bit(sig) ? t : t.group, sig);
}

/** The next signal `t` can take, lowest first after the synchronous ones; its set. */
function nextSignal(t: Task): { sig: number; set: PendingSet } | undefined {
  for (const set of [t as PendingSet, t.group]) {
    const ready = set.pending & ~t.sigmask;
    if (ready === 0n) continue;
    for (const sig of SYNCHRONOUS) if (ready & bit(sig)) return { sig, set };
    for (let sig = 1; sig <= NSIG; sig++) if (ready & bit(sig)) return { sig, set };
  }
  return undefined;
}

/**
 * Is the caller's process group orphaned (POSIX): no member has a parent in another group of
 * the same session? A parent outside the container (the runtime, for its init and execs)
 * counts as outside the session, as runc's setsid makes it.
 */
function orphanedPgrp(t: Task): boolean {
  const pgid = t.group.pgid;
  for (const g of t.pidns.groupList()) {
    if (g.pgid !== pgid || g.exitStatus) continue;
    const p = g.parent;
    if (p && p.pgid !== pgid && p.sid === g.sid) return false;
  }
  return true;
}

/** What the run loop does next after the delivery stage. */
export type DeliveryOutcome = "run" | "exit" | "stopped";

/**
 * The run loop's delivery stage, before the task returns to application code: the pending
 * signals it does not block take their action, one after another: an ignored one is
 * discarded; a caught one gets a frame (several stack, the last one's handler runs first,
 * as on Linux); a fatal one ends the group; a stopping one stops it. The system call the task
 * comes from, if a signal interrupted it, restarts or fails with EINTR (syscall-restart.ts).
 */
export function deliverSignals(t: Task): DeliveryOutcome {
  const group = t.group;
  // The common case, checked without bigint arithmetic: it runs before every return to the program.
  if (t.pending === 0n && group.pending === 0n && t.savedSigmask === undefined) {
    if (t.exitStatus !== undefined) return "exit";
    if (group.stopped !== undefined) return "stopped";
    if (t.restartKind !== undefined) settleRestart(t, undefined);
    return "run";
  }
  let first = true;
  for (;;) {
    if (t.exitStatus !== undefined) return "exit";
    if (group.stopped !== undefined) return "stopped";
    const next = nextSignal(t);
    if (!next) break;
    const { sig } = next;
    const info = dequeue(next.set, sig);
    const act = t.sighand.actions.get(sig);
    const handler = act?.handler ?? SIG_DFL;
    if (handler === SIG_IGN) continue;
    if (handler === SIG_DFL) {
      if (IGNORED_BY_DEFAULT.has(sig)) continue;
      // Queued while it had a handler: the init takes no default action but SIGSTOP's
      // (SIGKILL never queues; a fault lifted the protection in forceFault).
      if (group.unkillable && sig !== SIGSTOP) continue;
      if (STOPPING.has(sig)) {
        // SIGTSTP, SIGTTIN and SIGTTOU do not stop an orphaned process group (Linux discards
        // them there); SIGSTOP always stops.
        if (sig !== SIGSTOP && orphanedPgrp(t)) continue;
        stopGroup(group, sig);
        return "stopped";
      }
      killGroup(group, deathBy(group, sig));
      return "exit";
    }
    // A handler: the interrupted syscall restarts or fails first, so the frame saves the
    // registers it resumes with.
    if (first) settleRestart(t, act);
    first = false;
    // sigsuspend, ppoll and pselect6 ran with a temporary mask: the frame restores the caller's.
    const delivery: Delivery = { sig, action: act!, info, oldmask: t.savedSigmask ?? t.sigmask };
    t.savedSigmask = undefined;
    try {
      setupFrame(t, t.cpu, delivery);
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
      // The frame could not be written: SIGSEGV, forced (Linux's signal_setup_done failure).
      if (sig === SIGSEGV) {
        killGroup(group, deathBy(group, SIGSEGV));
        return "exit";
      }
      forceFault(t, SIGSEGV, makeInfo(SIGSEGV, SI_KERNEL));
      continue;
    }
    if (act!.flags & SA_RESETHAND) t.sighand.actions.delete(sig);
    t.sigmask |= act!.mask;
    if (!(act!.flags & SA_NODEFER)) t.sigmask |= bit(sig);
    t.sigmask &= ~UNBLOCKABLE;
  }
  if (first) settleRestart(t, undefined);
  // No handler ran: a temporary mask ends here.
  if (t.savedSigmask !== undefined) {
    t.sigmask = t.savedSigmask;
    t.savedSigmask = undefined;
  }
  return "run";
}

export type OutsideSignal =
  /** It ended the process (its default action, or KILL), with this signal as the cause. */
  | { action: "terminate"; signal: number }
  /** Discarded: ignored (SIG_IGN or by default), or the process had ended already. */
  | { action: "ignore" }
  /** Blocked by every thread: it waits in the process's pending set, as on Linux. */
  | { action: "pending" }
  /** Taken by a thread: its handler runs, or it stops or continues the process. */
  | { action: "delivered" };

/**
 * A signal from outside the container (moat kill, the OCI kill, the shim's Kill) to `group`:
 * sent as by a process outside its pid namespace (SI_USER, si_pid 0), so it runs the
 * program's handler, takes its default action, waits while blocked or stops the process.
 */
export function signalFromOutside(group: ThreadGroup<Task>, sig: number): OutsideSignal {
  if (group.exitStatus || group.tasks.size === 0) return { action: "ignore" };
  const stoppedBefore = group.stopped;
  sendSignal({ group }, sig, makeInfo(sig, SI_USER, { pid: 0, uid: 0 }), false, true);
  if (group.exitStatus) return { action: "terminate", signal: sig };
  if (group.pending & bit(sig)) {
    const waits = [...group.tasks].every((t) => t.sigmask & bit(sig) && !(t.sigwaiting & bit(sig)));
    return waits ? { action: "pending" } : { action: "delivered" };
  }
  if (sig === SIGCONT && stoppedBefore !== undefined) return { action: "delivered" };
  return { action: "ignore" };
}
