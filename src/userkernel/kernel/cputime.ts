// CPU time of tasks and processes, as the host measured it: each application thread runs on
// a host thread of a stub, which is stopped whenever the kernel serves it, so the host's
// figure is the application's own time (never the kernel's time serving it): cpu-host.ts
// reads it (schedstat's precise total, split into user and system time by stat's ticks).
//
// Threads that ended and processes that were reaped keep counting: their time is added to
// their group (a thread's, when it leaves) and to their parent (a reaped child's, with its
// own children's), which is what RUSAGE_SELF, RUSAGE_CHILDREN and times(2) report.
import { add, type CpuTimes, endedTimes, hostThreadTimes, readOr, ZERO } from "./cpu-host.js";

export type { CpuTimes } from "./cpu-host.js";

import type { Task } from "./task.js";
import type { ThreadGroup } from "./thread-group.js";

/** The host thread that runs `task` (its stub's pid and that thread's tid). */
function hostThread(task: Task): { pid: number; tid: number } {
  return { pid: task.mm.hostPid, tid: task.ctx.hostTid };
}

/** One thread's CPU time (RUSAGE_THREAD). */
export function threadTimes(task: Task): CpuTimes {
  const h = hostThread(task);
  return hostThreadTimes(h.pid, h.tid);
}

/** One thread's CPU time in ns, with one file read (CLOCK_THREAD_CPUTIME_ID, CPU timers). */
export function threadNs(task: Task): bigint {
  const h = hostThread(task);
  const sched = readOr(`/proc/${h.pid}/task/${h.tid}/schedstat`);
  if (sched !== undefined) return BigInt(sched.split(" ")[0] ?? "0");
  return hostThreadTimes(h.pid, h.tid).total;
}

/** A process's CPU time in ns (CLOCK_PROCESS_CPUTIME_ID, ITIMER_PROF, CPU timers). */
export function groupNs(group: ThreadGroup<Task>): bigint {
  let sum = endedTimes(group).total;
  for (const t of group.tasks) sum += threadNs(t);
  return sum;
}

/** Time of a group's reaped children (and theirs). */
const reaped = new WeakMap<ThreadGroup<Task>, CpuTimes>();

/** A process's CPU time: its live threads and those that ended (CLOCK_PROCESS_CPUTIME_ID, RUSAGE_SELF). */
export function groupTimes(group: ThreadGroup<Task>): CpuTimes {
  let sum = endedTimes(group);
  for (const t of group.tasks) sum = add(sum, threadTimes(t));
  return sum;
}

/** The reaped children's CPU time (RUSAGE_CHILDREN, times' cutime and cstime). */
export function childrenTimes(group: ThreadGroup<Task>): CpuTimes {
  return reaped.get(group) ?? ZERO;
}

/** `child` was reaped by `parent` (wait4, waitid, or auto-reaped): its time and its children's move up. */
export function accountReaped(parent: ThreadGroup<Task>, child: ThreadGroup<Task>): void {
  const mine = add(groupTimes(child), childrenTimes(child));
  reaped.set(parent, add(reaped.get(parent) ?? ZERO, mine));
}

// CPU-time clock ids (clock_getcpuclockid, pthread_getcpuclockid): ~pid << 3, bit 2 for a
// thread clock, bits 0-1 which time (0 PROF: user + system, 1 VIRT: user, 2 SCHED: the runtime).
const CPUCLOCK_VIRT = 1;
const CPUCLOCK_SCHED = 2;
const CPUCLOCK_PERTHREAD = 4;

/**
 * The reading of a CPU-time clock id (negative), or undefined if it names no clock the
 * caller may read: a thread clock of a thread outside its process, an unknown pid or a
 * malformed id (Linux's pid_for_clock, EINVAL for all of them). `timer`: for timer_create,
 * which takes a process clock only by its leader's pid.
 */
export function cpuClock(t: Task, id: number, timer = false): (() => bigint) | undefined {
  const which = id & 3;
  if (which > CPUCLOCK_SCHED) return undefined;
  const pid = ~(id >> 3);
  const thread = (id & CPUCLOCK_PERTHREAD) !== 0;
  const read = (get: () => CpuTimes | bigint): (() => bigint) => {
    return () => {
      const v = get();
      if (typeof v === "bigint") return v;
      return which === CPUCLOCK_VIRT ? v.user : v.total;
    };
  };
  if (thread) {
    const task = pid === 0 ? t : t.pidns.task(pid);
    if (!task || task.group !== t.group) return undefined;
    return which === CPUCLOCK_SCHED ? read(() => threadNs(task)) : read(() => threadTimes(task));
  }
  let group: ThreadGroup<Task> | undefined = t.group;
  if (pid !== 0) {
    group = timer ? t.pidns.group(pid) : t.pidns.task(pid)?.group;
    if (timer && group?.tgid !== pid) group = undefined;
  }
  if (!group) return undefined;
  const g = group;
  return which === CPUCLOCK_SCHED ? read(() => groupNs(g)) : read(() => groupTimes(g));
}
