// A signal sent to a process from outside the container (moat kill, the OCI kill, the shim's
// Kill), decided as Linux decides it from the process's dispositions. Signal handlers are
// recorded by rt_sigaction but never run yet (no signal frames), so a signal the program
// catches cannot be delivered: that is refused with an error, not dropped and not turned into
// a kill the program did not ask for.
import { MoatError } from "../../spec/errors.js";
import type { Task } from "./task.js";

const SIGKILL = 9;
const SIGSTOP = 19;
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
  /** The default action ends the process, with this signal as its cause. */
  | { action: "terminate"; signal: number }
  /** Discarded: ignored by default or by SIG_IGN. */
  | { action: "ignore" }
  /** Blocked: it waits in the pending set, as on Linux, and acts when unblocked. */
  | { action: "pending" };

/**
 * What a signal from outside does to `task`. Throws ENOTSUP for what the kernel cannot do
 * yet: stopping a process, and running a handler the program installed.
 */
export function outsideSignal(task: Task, sig: number, name: string): OutsideSignal {
  if (sig === SIGKILL) return { action: "terminate", signal: sig };
  // SIGSTOP can be neither caught nor ignored.
  if (sig === SIGSTOP) throw stopRefused(name);
  const handler = task.sigactions.get(sig)?.handler ?? SIG_DFL;
  if (handler === SIG_IGN) return { action: "ignore" };
  const bit = 1n << BigInt(sig - 1);
  if (handler === SIG_DFL) {
    if (IGNORED_BY_DEFAULT.has(sig)) return { action: "ignore" };
    if (STOPPING.has(sig)) throw stopRefused(name);
    if (task.sigmask & bit) {
      task.pendingSignals |= bit;
      return { action: "pending" };
    }
    return { action: "terminate", signal: sig };
  }
  throw new MoatError(
    "ENOTSUP",
    `the program (pid ${task.pid} in the container) installed a handler for ${name}, and the userkernel cannot run signal handlers yet, so ${name} was not delivered: send KILL to end it, or use the vm isolation`,
  );
}
