// The kernel's one pid namespace: every task by tid and every thread group by tgid, the
// init group (pid 1, whose end ends the namespace), and pid allocation. Pids are never
// reused, so a pid a runtime reported never names another process later. /proc lists
// the groups from here.
import type { Member, ThreadGroup } from "./thread-group.js";

/** What the namespace needs of a task (task.ts's Task). */
export interface NsMember extends Member {
  readonly group: ThreadGroup<this>;
}

/** The highest pid (Linux's default pid_max for a machine with few CPUs). */
const PID_MAX = 4194304;

export class PidNamespace<T extends NsMember = NsMember> {
  private readonly tasks = new Map<number, T>();
  private readonly groups = new Map<number, ThreadGroup<T>>();
  private last = 0;

  /** A pid no task of this namespace has had. */
  alloc(): number {
    if (this.last >= PID_MAX) throw new RangeError("the pid namespace ran out of pids");
    return ++this.last;
  }

  /** The container's init (pid 1), while it lives. */
  get init(): ThreadGroup<T> | undefined {
    return this.groups.get(1);
  }

  /** A new task enters: its group too, if it is the group's first. */
  add(task: T): void {
    this.tasks.set(task.tid, task);
    const g = task.group;
    this.groups.set(g.tgid, g);
    g.forget ??= () => {
      if (this.groups.get(g.tgid) === g) this.groups.delete(g.tgid);
    };
  }

  /**
   * A task left. Its group, once it has none left, stays while it is a zombie its parent
   * has yet to reap (kill, getpgid and setpgid still find it, as on Linux): reaping it
   * (exit.ts's reap) calls its forget(). A group no parent of the kernel waits for goes now.
   */
  remove(task: T): void {
    // A thread that exec'd may hold the tid now (retid), while the old leader leaves.
    if (this.tasks.get(task.tid) === task) this.tasks.delete(task.tid);
    const g = task.group;
    if (g.tasks.size === 0 && !g.parent?.zombies.has(g)) g.forget?.();
  }

  /** execve from a non-leader thread: `task` is known by `tid` (the leader's) from now on. */
  retid(task: T, from: number): void {
    if (this.tasks.get(from) === task) this.tasks.delete(from);
    this.tasks.set(task.tid, task);
  }

  task(tid: number): T | undefined {
    return this.tasks.get(tid);
  }

  group(tgid: number): ThreadGroup<T> | undefined {
    return this.groups.get(tgid);
  }

  /** The groups' tgids, ascending, zombies not yet reaped included. */
  tgids(): number[] {
    return [...this.groups.keys()].sort((x, y) => x - y);
  }

  /** The groups themselves, in tgids() order. */
  groupList(): ThreadGroup<T>[] {
    return this.tgids().map((id) => this.groups.get(id)!);
  }

  /** The tids of one group, ascending (/proc/<pid>/task). */
  tids(tgid: number): number[] {
    const g = this.groups.get(tgid);
    return g ? [...g.tasks].map((t) => t.tid).sort((x, y) => x - y) : [];
  }

  get size(): number {
    return this.groups.size;
  }
}
