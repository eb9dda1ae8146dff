// The run loop of one task, as explicit states (drawn in docs/userkernel-kernel.md):
//
//   deliver signals -> run app -> syscall -> (value | restart | noreturn) -> deliver signals
//                               -> fault   -> the fault's signal ends the group (no handlers yet)
//                               -> interrupted -> deliver signals (a kill: exit)
//                               -> host death -> exit
//   exit -> leave the group (the last task makes it a zombie) -> its waiters are woken
//
// The loops of several tasks interleave on Node's one thread at their awaits.
import type { StopEvent } from "../platform/platform.js";
import { dispatch } from "./dispatch.js";
import { releaseTask } from "./exit.js";
import { deliverSignals, killGroup } from "./signals.js";
import type { Task } from "./task.js";

const SIGKILL = 9;

/**
 * Run `task` until it exits, then release it. Resolves once it has left its group. The
 * states are inline (one await per stop, none for a synchronous syscall): a tight syscall
 * loop feels every extra promise.
 */
export async function runTask(task: Task): Promise<void> {
  try {
    for (;;) {
      // [deliver signals]
      if (deliverSignals(task)) break;
      // [run app]
      let ev: StopEvent;
      try {
        ev = await task.ctx.switchTo(task.cpu);
      } catch (e) {
        // A kill ends the stub while a wait is in flight: a stop reported just before the
        // kill then finds no process to read registers from. The task is over anyway.
        if (task.exitStatus) break;
        throw e;
      }
      if (task.exitStatus) break;
      // [interrupted]: something for this task to look at (a signal, its group's exit).
      if (ev.kind === "interrupted") continue;
      if (ev.kind === "syscall") {
        // [syscall]: most handlers are synchronous and return no promise at all.
        const serving = dispatch(task);
        // A handler that sleeps does so in block() (wait.ts), which a kill interrupts.
        if (serving) await serving;
        if (task.exitStatus) break;
        continue;
      }
      // [fault] / [host death] -> [exit]
      ended(task, ev);
      break;
    }
  } finally {
    // [exit]: leave the group; the last task makes it a zombie and wakes its waiters.
    releaseTask(task);
  }
}

function ended(task: Task, ev: Exclude<StopEvent, { kind: "syscall" | "interrupted" }>): void {
  switch (ev.kind) {
    case "signal":
      // No signal delivery yet: a fault or trap the program incurs ends it, as the default
      // action of SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP would.
      killGroup(task.group, { signal: ev.signal });
      return;
    case "killed":
      killGroup(task.group, { signal: ev.signal });
      return;
    case "exited":
      // The stub never exits by itself; if it did, report it as killed by the host.
      killGroup(task.group, { signal: SIGKILL });
      return;
  }
}
