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
import { bit, IGNORED_BY_DEFAULT } from "./signals.js";
import { SIG_DFL, SIG_IGN } from "./signals-state.js";
import type { Task } from "./task.js";
import type { ThreadGroup } from "./thread-group.js";

export const SIGCHLD = 17;
/** sigaction's "do not make zombies of my children" flag. */
const SA_NOCLDWAIT = 2n;

/**
 * A signal for a whole group from inside the kernel (the exit signal to a parent): queued to
 * its pending set, delivered (or discarded, SIGCHLD's default) on a task's way back to the
 * program. The signal engineer's send function replaces this once it is there.
 */
export function queueGroupSignal(group: ThreadGroup<Task>, sig: number): void {
  if (group.exitStatus || sig <= 0 || sig > 64) return;
  group.pending |= bit(sig);
  // A signal that will act (not ignored) wakes a task that does not block it, so that a
  // sleeping one (pause, a blocking read) reaches the delivery stage; SIGCHLD's default,
  // ignore, wakes no one, as on Linux.
  const leader = group.leader;
  const handler = leader?.sighand.handler(sig);
  if (handler === undefined || handler === SIG_IGN || (handler === SIG_DFL && IGNORED_BY_DEFAULT.has(sig)))
    return;
  for (const t of group.tasks)
    if (!(t.sigmask & bit(sig))) {
      t.interrupt();
      return;
    }
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
}

function groupEnded(task: Task, group: ThreadGroup<Task>): void {
  // The children of the dead: to the subreaper or init, zombies included (they may reap).
  const reaper = group.children.size > 0 ? reaperFor(task, group) : undefined;
  const orphans = [...group.children];
  for (const child of orphans) {
    group.children.delete(child);
    group.zombies.delete(child);
    child.parent = reaper;
    if (!reaper) continue;
    reaper.children.add(child);
    if (child.tasks.size === 0) {
      if (autoReaps(reaper)) reap(reaper, child);
      else {
        reaper.zombies.add(child);
        if (child.exitSignal) queueGroupSignal(reaper, child.exitSignal);
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
  else if (group.exitSignal) queueGroupSignal(parent, group.exitSignal);
  parent.childChanged();
}
