// Signals as the kernel decides them: the default action of each signal, queueing to a
// task's or a thread group's pending set, the run loop's delivery stage, and a signal sent
// from outside the container (moat kill, the OCI kill, the shim's Kill).
//
// Handlers are recorded by rt_sigaction but not run yet (no signal frames). A terminating
// signal sent from outside that the program has a handler for therefore ends it as the
// default action would, with that signal as the cause, and the kernel says so in its log:
// refusing it instead would leave docker stop and the CRI's StopContainer, which send TERM
// first and fail on an error, unable to stop a program that merely traps TERM. Stopping is
// refused: the kernel cannot stop a process yet, and no stop sequence depends on it.
import { MoatError } from "../../spec/errors.js";
import { SIG_DFL, SIG_IGN } from "./signals-state.js";
import type { Task } from "./task.js";
import type { ExitStatus, ThreadGroup } from "./thread-group.js";

export const SIGKILL = 9;
export const SIGSTOP = 19;

/** Default action "ignore" (signal(7)); SIGCONT continues a stopped process, and none is stopped. */
export const IGNORED_BY_DEFAULT = new Set([
  17 /* SIGCHLD */, 18 /* SIGCONT */, 23 /* SIGURG */, 28 /* SIGWINCH */,
]);
/** Default action "stop": the userkernel cannot stop a process yet. */
export const STOPPING = new Set([SIGSTOP, 20 /* SIGTSTP */, 21 /* SIGTTIN */, 22 /* SIGTTOU */]);

export const bit = (sig: number): bigint => 1n << BigInt(sig - 1);

/**
 * The group ends with `status`: every task of it is interrupted and leaves (the platform
 * cannot stop a running thread without killing its host context yet, so a fatal signal
 * takes effect at once rather than at the task's next kernel entry).
 */
export function killGroup(group: ThreadGroup<Task>, status: ExitStatus): void {
  group.exit(status);
  for (const t of group.tasks) t.interrupt();
}

/**
 * The run loop's delivery stage, before the task returns to application code: the pending
 * signals it does not block (its own, then its group's) take their action. Ignored ones
 * are discarded; one whose default action terminates ends the group; a caught one waits
 * (delivery to handlers is the next step), as does a stopping one. Returns whether the task
 * must exit.
 */
export function deliverSignals(task: Task): boolean {
  const group = task.group;
  // The common case, checked without bigint arithmetic: it runs before every return to the program.
  if (task.pending === 0n && group.pending === 0n) return task.exitStatus !== undefined;
  const ready = (task.pending | group.pending) & ~task.sigmask;
  if (ready === 0n) return task.exitStatus !== undefined;
  for (let sig = 1; sig <= 64; sig++) {
    const b = bit(sig);
    if (!(ready & b)) continue;
    const handler = task.sighand.handler(sig);
    if (sig !== SIGKILL && handler !== SIG_DFL && handler !== SIG_IGN) continue;
    if (sig !== SIGKILL && STOPPING.has(sig)) continue;
    if (task.pending & b) task.pending &= ~b;
    else group.pending &= ~b;
    if (sig !== SIGKILL && (handler === SIG_IGN || IGNORED_BY_DEFAULT.has(sig))) continue;
    killGroup(group, { signal: sig });
    break;
  }
  return task.exitStatus !== undefined;
}

function stopRefused(name: string): MoatError {
  return new MoatError(
    "ENOTSUP",
    `the userkernel cannot stop a process yet, so ${name} was not sent: use the vm isolation to pause a container, or send KILL to end it`,
  );
}

export type OutsideSignal =
  /**
   * The default action ends the process, with this signal as its cause; `unhandled`: the
   * program has a handler for it, which could not run.
   */
  | { action: "terminate"; signal: number; unhandled?: boolean }
  /** Discarded: ignored by default or by SIG_IGN (`unhandled`: a handler that could not run). */
  | { action: "ignore"; unhandled?: boolean }
  /** Blocked: it waits in the group's pending set, as on Linux, and acts when unblocked. */
  | { action: "pending" };

/**
 * A signal from outside the container to `group`, decided from its dispositions. Throws
 * ENOTSUP for stopping, which the kernel cannot do yet.
 */
export function signalFromOutside(group: ThreadGroup<Task>, sig: number, name: string): OutsideSignal {
  const leader = group.leader;
  if (group.exitStatus || !leader) return { action: "ignore" };
  if (sig === SIGKILL) {
    killGroup(group, { signal: sig });
    return { action: "terminate", signal: sig };
  }
  const handler = leader.sighand.handler(sig);
  if (handler === SIG_IGN) return { action: "ignore" };
  if (STOPPING.has(sig)) throw stopRefused(name);
  const caught = handler !== SIG_DFL;
  const log = (what: string): void =>
    leader.kernel.log(
      `moat userkernel: pid ${group.tgid} has a handler for ${name}, which the userkernel cannot run yet: ${what}`,
    );
  if (IGNORED_BY_DEFAULT.has(sig)) {
    if (!caught) return { action: "ignore" };
    log(`${name} was ignored, as its default action would be`);
    return { action: "ignore", unhandled: true };
  }
  // Blocked by every task, with the default action: it waits in the group's pending set, as
  // on Linux, and acts once a task unblocks it (rt_sigprocmask, then the delivery stage).
  // A caught one cannot wait for a handler that will never run.
  if (!caught && [...group.tasks].every((t) => t.sigmask & bit(sig))) {
    group.pending |= bit(sig);
    return { action: "pending" };
  }
  if (caught) log(`${name} ended it, as its default action would`);
  killGroup(group, { signal: sig });
  return caught
    ? { action: "terminate", signal: sig, unhandled: true }
    : { action: "terminate", signal: sig };
}
