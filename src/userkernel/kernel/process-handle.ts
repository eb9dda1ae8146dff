// What the kernel hands its caller (the Sandbox backend, runStatic) for a process it spawned:
// the process's pid, its host stubs, a signal from outside, its end and its resource use,
// each over all the tasks of its thread group.
import { groupUsage } from "./setup.js";
import { type OutsideSignal, signalFromOutside } from "./signals.js";
import type { Task } from "./task.js";
import type { ThreadGroup } from "./thread-group.js";

/** USER_HZ: the unit of the CPU times in /proc/<pid>/stat. */
const CLK_TCK = 100;
const PAGE = 4096;

export interface RunResult {
  code?: number;
  signal?: string;
  /** How it ended in Linux's wait-status encoding (what wait4 gives a parent): code << 8, or the signal. */
  waitStatus: number;
  /** Unimplemented syscalls the programs of the kernel made, by name, with how often. */
  unimplemented: Map<string, number>;
}

export interface ProcessUsage {
  /** User plus system CPU time of it and every process below it, reaped ones included. */
  cpuNanos: number;
  /** Resident memory of the live ones' host address spaces. */
  memoryBytes: number;
  /** The live tasks (threads) of it and of every process below it. */
  tasks: number;
}

export interface ProcessHandle {
  /** Its pid in the kernel's pid namespace. */
  readonly tgid: number;
  /** The host pids of the stubs that run its tasks (none once it ended). */
  hostPids(): number[];
  /**
   * A signal from outside the container, sent to the thread group as a kill(2) is
   * (signals.ts): a handler runs, or its default action (terminate, core, ignore, stop,
   * continue) is taken; blocked, it waits pending.
   */
  signal(sig: number, name?: string): OutsideSignal;
  /** Resolves once the process ended (every task left) with how it ended. */
  wait(): Promise<RunResult>;
  usage(): ProcessUsage;
}

export function processHandle(group: ThreadGroup<Task>, wait: () => Promise<RunResult>): ProcessHandle {
  return {
    tgid: group.tgid,
    hostPids: () => [...new Set([...group.tasks].map((t) => t.mm.hostPid))],
    signal: (sig) => signalFromOutside(group, sig),
    wait,
    usage: () => treeUsage(group),
  };
}

/**
 * The process and every process below it (for the container's init: all of the container,
 * since orphans come to init): the live ones' stubs, plus the CPU time of those already
 * reaped. A stub shared by processes (vfork's, until the exec) counts once.
 */
function treeUsage(top: ThreadGroup<Task>): ProcessUsage {
  let ticks = 0;
  let rss = 0;
  let tasks = 0;
  const seen = new Set<ThreadGroup<Task>>();
  const stubs = new Set<number>();
  const walk = (g: ThreadGroup<Task>): void => {
    if (seen.has(g)) return;
    seen.add(g);
    ticks += g.childTicks.utime + g.childTicks.stime;
    // An ended one's own time was taken as its last task left.
    if (g.tasks.size === 0) ticks += g.cpuTicks.utime + g.cpuTicks.stime;
    tasks += g.tasks.size;
    const stub = g.leader?.mm.hostPid;
    if (stub !== undefined && !stubs.has(stub)) {
      stubs.add(stub);
      const u = groupUsage(g);
      ticks += u.utime + u.stime;
      rss += u.rss;
    }
    for (const c of g.children) walk(c);
  };
  walk(top);
  return { cpuNanos: (ticks * 1e9) / CLK_TCK, memoryBytes: rss * PAGE, tasks };
}
