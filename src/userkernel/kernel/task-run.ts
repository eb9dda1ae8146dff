// The run loop of one task, as explicit states (drawn in docs/userkernel-kernel.md):
//
//   deliver signals -> run app -> syscall -> (value | restart | noreturn) -> deliver signals
//                               -> fault   -> the fault's signal ends the group (no handlers yet)
//                               -> host death / interrupted -> exit
//   exit -> leave the group (the last task makes it a zombie) -> its waiters are woken
//
// The loops of several tasks interleave on Node's one thread at their awaits.
import type { StopEvent } from "../platform/platform.js";
import { dispatch } from "./dispatch.js";
import { deliverSignals, killGroup } from "./signals.js";
import type { Task } from "./task.js";

const SIGKILL = 9;

type State = "deliver" | "run" | "exit";

/** Run `task` until it exits, then release it. Resolves once it has left its group. */
export async function runTask(task: Task): Promise<void> {
  let state: State = "deliver";
  try {
    while (state !== "exit") {
      switch (state) {
        case "deliver":
          state = deliverSignals(task) ? "exit" : "run";
          break;
        case "run":
          state = await runApp(task);
          break;
      }
    }
  } finally {
    task.release();
  }
}

/** Run application code to its next stop and serve that stop. */
async function runApp(task: Task): Promise<State> {
  let ev: StopEvent;
  try {
    ev = await task.cpu.run();
  } catch (e) {
    // A kill ends the stub while a wait is in flight: a stop reported just before the kill
    // then finds no process to read registers from. The task is over anyway.
    if (task.exitStatus) return "exit";
    throw e;
  }
  if (task.exitStatus) return "exit";
  switch (ev.kind) {
    case "syscall":
      await syscall(task);
      return task.exitStatus ? "exit" : "deliver";
    case "signal":
      // No signal delivery yet: a fault or trap the program incurs ends it, as the default
      // action of SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP would.
      killGroup(task.group, { signal: ev.signal });
      return "exit";
    case "killed":
      killGroup(task.group, { signal: ev.signal });
      return "exit";
    case "exited":
      // The stub never exits by itself; if it did, report it as killed by the host.
      killGroup(task.group, { signal: SIGKILL });
      return "exit";
  }
}

/** The syscall state: serve it; a handler that waits races the task's interruption. */
async function syscall(task: Task): Promise<void> {
  // Most handlers are synchronous and return no promise at all.
  const serving = dispatch(task);
  if (!serving) return;
  task.sleeping = true;
  try {
    if ((await Promise.race([serving, task.interrupted()])) === "interrupted") serving.catch(() => {});
  } finally {
    task.sleeping = false;
  }
}
