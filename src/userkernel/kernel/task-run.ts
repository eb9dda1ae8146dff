// The run loop of one task, as explicit states (drawn in docs/userkernel-kernel.md):
//
//   deliver signals -> run app -> syscall -> (value | restart | noreturn) -> deliver signals
//        |                     -> fault   -> the fault's signal, forced -> deliver signals
//        |                     -> interrupted -> deliver signals (a signal, a stop, a kill)
//        |                     -> host death -> exit
//        '-> stopped (SIGSTOP, SIGTSTP...) -> wait for SIGCONT or SIGKILL -> deliver signals
//   exit -> leave the group (the last task makes it a zombie) -> its waiters are woken
//
// The loops of several tasks interleave on Node's one thread at their awaits.
import type { StopEvent } from "../platform/platform.js";
import { dispatch } from "./dispatch.js";
import { releaseTask } from "./exit.js";
import { deliverSignals, forceFault, killGroup } from "./signals.js";
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
      const next = deliverSignals(task);
      if (next === "exit") break;
      if (next === "stopped") {
        // [stopped]: until SIGCONT (or a kill) resumes the group.
        await task.group.whenResumed();
        continue;
      }
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
      if (ev.kind === "signal") {
        // [fault]: the application's own signal, with the host's siginfo (si_addr, si_code).
        forceFault(task, ev.signal, ev.info.raw);
        continue;
      }
      // [host death] -> [exit]
      killGroup(task.group, { signal: ev.kind === "killed" ? ev.signal : SIGKILL });
      break;
    }
  } finally {
    // [exit]: leave the group; the last task makes it a zombie and wakes its waiters.
    releaseTask(task);
  }
}
