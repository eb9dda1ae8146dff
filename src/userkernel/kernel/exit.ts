// The end of a task and of its thread group, as Linux's do_exit/exit_notify do it:
//
//   task ends -> robust list, clear_child_tid: write 0, wake its futex -> release its vfork parent
//             -> leave the group (and the pid namespace)
//   last task -> the group is a zombie: its children go to the nearest subreaper or init,
//                its parent gets the exit signal (SIGCHLD unless clone said otherwise) and
//                its waits look again; a parent that ignores SIGCHLD (SIG_IGN or
//                SA_NOCLDWAIT) has it reaped at once.
import { clearChildTid, exitRobustList } from "./futex.js";
import { hostUsage } from "./setup.js";
import { makeInfo, sendSignal } from "./signals.js";
import { SIG_DFL, SIG_IGN } from "./signals-state.js";
import type { Task } from "./task.js";
import type { ThreadGroup } from "./thread-group.js";

export const SIGCHLD = 17;
/** sigaction's "do not make zombies of my children" flag. */
const SA_NOCLDWAIT = 2n;

const CLD_EXITED = 1;
const CLD_KILLED = 2;
const CLD_DUMPED = 3;
const SI_USER = 0;

/** The siginfo of a child's exit signal (SIGCHLD): CLD_EXITED/KILLED/DUMPED with its status. */
function childInfo(sig: number, child: ThreadGroup<Task>): Buffer {
  const st = child.exitStatus;
  if (!st) return makeInfo(sig, SI_USER);
  if ("code" in st) return makeInfo(sig, CLD_EXITED, { pid: child.tgid, status: st.code });
  return makeInfo(sig, st.core ? CLD_DUMPED : CLD_KILLED, { pid: child.tgid, status: st.signal });
}

/** Send a signal the kernel raises for a process's life events, as every signal is sent. */
function queueGroupSignal(group: ThreadGroup<Task>, sig: number, child?: ThreadGroup<Task>): void {
  if (group.exitStatus || sig <= 0 || sig > 64) return;
  sendSignal({ group }, sig, child ? childInfo(sig, child) : makeInfo(sig, SI_USER));
}

/** The task is done: Linux's exit order, then the group's end if it was its last task. */
export function releaseTask(task: Task): void {
  const group = task.group;
  // Linux's order (mm_release): robust futexes get FUTEX_OWNER_DIED, then clear_child_tid
  // gets 0 and its waiter (pthread_join) is woken.
  exitRobustList(task);
  clearChildTid(task);
  const last = group.tasks.size === 1 && group.tasks.has(task);
  if (last) {
    // The stub's CPU time, read before it is killed: wait4's rusage and RUSAGE_CHILDREN.
    const u = hostUsage(task.mm.hostPid);
    group.cpuTicks.utime += u.utime;
    group.cpuTicks.stime += u.stime;
  }
  task.vforkDone?.();
  task.vforkDone = undefined;
  task.release();
  if (last) groupEnded(task, group);
}

/** Where an orphan of `group` goes: the nearest subreaper above it, or the namespace's init. */
function reaperFor(task: Task, group: ThreadGroup<Task>): ThreadGroup<Task> | undefined {
  for (let g = group.parent; g; g = g.parent) if (g.subreaper && !g.exitStatus) return g;
  const init = task.pidns.init;
  return init && init !== group && !init.exitStatus ? init : undefined;
}

/** Does `parent` ask for its children not to become zombies? */
function autoReaps(parent: ThreadGroup<Task>): boolean {
  const leader = parent.leader;
  if (!leader) return false;
  const act = leader.sighand.actions.get(SIGCHLD);
  return act !== undefined && (act.handler === SIG_IGN || (act.flags & SA_NOCLDWAIT) !== 0n);
}

/** The parent took the zombie: it is gone, its CPU time added to the parent's children's. */
export function reap(parent: ThreadGroup<Task>, child: ThreadGroup<Task>): void {
  parent.children.delete(child);
  parent.zombies.delete(child);
  parent.childTicks.utime += child.cpuTicks.utime + child.childTicks.utime;
  parent.childTicks.stime += child.cpuTicks.stime + child.childTicks.stime;
  // Its pid is free of it now.
  child.forget?.();
}

function groupEnded(task: Task, group: ThreadGroup<Task>): void {
  // The children of the dead: to the subreaper or init, zombies included (they may reap).
  const reaper = group.children.size > 0 ? reaperFor(task, group) : undefined;
  const orphans = [...group.children];
  for (const child of orphans) {
    group.children.delete(child);
    group.zombies.delete(child);
    child.parent = reaper;
    if (!reaper) {
      // No process of the kernel will reap it: a zombie goes now.
      if (child.tasks.size === 0) child.forget?.();
      continue;
    }
    reaper.children.add(child);
    if (child.tasks.size === 0) {
      if (autoReaps(reaper)) reap(reaper, child);
      else {
        reaper.zombies.add(child);
        if (child.exitSignal) queueGroupSignal(reaper, child.exitSignal, child);
      }
      reaper.childChanged();
    }
  }
  // PR_SET_PDEATHSIG: children that asked are told their parent is gone.
  for (const child of orphans)
    for (const t of child.tasks) if (t.pdeathsig) queueGroupSignal(child, t.pdeathsig);
  const parent = group.parent;
  if (!parent) return;
  if (group.exitSignal === SIGCHLD && autoReaps(parent)) reap(parent, group);
  else if (group.exitSignal) queueGroupSignal(parent, group.exitSignal, group);
  parent.childChanged();
}
