// A signal sent to a process from outside the container (moat kill, the OCI kill, the shim's
// Kill), decided as Linux decides it from the process's dispositions. Signal handlers are
// recorded by rt_sigaction but never run yet (no signal frames). A terminating signal the
// program has a handler for therefore ends it as the default action would, with that signal
// as the cause, and the kernel says so in its log: refusing it instead would leave docker
// stop and the CRI's StopContainer, which send TERM first and fail on an error, unable to
// stop a program that merely traps TERM. Stopping is refused: the kernel cannot stop a
// process yet, and no stop sequence depends on it.
import { MoatError } from "../../spec/errors.js";
import type { Task } from "./task.js";

const SIGKILL = 9;
const SIG_DFL = 0n;
const SIG_IGN = 1n;

/** Default action "ignore" (signal(7)); SIGCONT continues a stopped process, and none is stopped. */
const IGNORED_BY_DEFAULT = new Set([17 /* SIGCHLD */, 18 /* SIGCONT */, 23 /* SIGURG */, 28 /* SIGWINCH */]);
/** Default action "stop": the userkernel cannot stop a process yet. */
const STOPPING = new Set([19 /* SIGSTOP */, 20 /* SIGTSTP */, 21 /* SIGTTIN */, 22 /* SIGTTOU */]);

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
  /** Blocked: it waits in the pending set, as on Linux, and acts when unblocked. */
  | { action: "pending" };

/** What a signal from outside does to `task`. Throws ENOTSUP for stopping, which the kernel cannot do yet. */
export function outsideSignal(task: Task, sig: number, name: string): OutsideSignal {
  if (sig === SIGKILL) return { action: "terminate", signal: sig };
  const handler = task.sigactions.get(sig)?.handler ?? SIG_DFL;
  if (handler === SIG_IGN) return { action: "ignore" };
  if (STOPPING.has(sig)) throw stopRefused(name);
  const caught = handler !== SIG_DFL;
  if (IGNORED_BY_DEFAULT.has(sig))
    return caught ? { action: "ignore", unhandled: true } : { action: "ignore" };
  // Blocked with the default action: it waits, as on Linux, and acts once unblocked
  // (rt_sigprocmask). A caught one cannot wait for a handler that will never run.
  const bit = 1n << BigInt(sig - 1);
  if (!caught && task.sigmask & bit) {
    task.pendingSignals |= bit;
    return { action: "pending" };
  }
  return caught
    ? { action: "terminate", signal: sig, unhandled: true }
    : { action: "terminate", signal: sig };
}
