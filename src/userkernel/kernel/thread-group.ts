// A thread group: what Linux calls a process. Its tasks (threads) share the group's pending
// signals, resource limits, exit status, place in the process tree (parent, children,
// zombies) and job control (process group, session). The tgid is the leader's tid.
import type { Layout } from "../mm/layout.js";
import { WaitQueue } from "./wait.js";

/**
 * What the group needs of its tasks (task.ts's Task; generic so that this module does not
 * import the task's, which imports it).
 */
export interface Member {
  readonly tid: number;
}

export type ExitStatus = { code: number } | { signal: number; core?: boolean };

/**
 * Linux's wait status (wait4's *wstatus): the exit code in bits 8-15, or the terminating
 * signal in bits 0-6 with 0x80 for a core dump.
 */
export function waitStatus(s: ExitStatus): number {
  if ("code" in s) return (s.code & 0xff) << 8;
  return (s.signal & 0x7f) | (s.core ? 0x80 : 0);
}

// Linux's RLIMIT_* numbers.
export const RLIMIT_STACK = 3;
export const RLIMIT_NOFILE = 7;
export const RLIM_INFINITY = 0xffffffffffffffffn;

export type Rlimits = Map<number, [bigint, bigint]>;

export function defaultRlimits(): Rlimits {
  const inf: [bigint, bigint] = [RLIM_INFINITY, RLIM_INFINITY];
  return new Map<number, [bigint, bigint]>([
    [0, inf], // CPU
    [1, inf], // FSIZE
    [2, inf], // DATA
    [RLIMIT_STACK, [8n * 1024n * 1024n, RLIM_INFINITY]],
    [4, [0n, RLIM_INFINITY]], // CORE
    [5, inf], // RSS
    [6, [4096n, 4096n]], // NPROC
    [RLIMIT_NOFILE, [1024n, 4096n]],
    [8, [8n * 1024n * 1024n, 8n * 1024n * 1024n]], // MEMLOCK
    [9, inf], // AS
    [10, inf], // LOCKS
    [11, [4096n, 4096n]], // SIGPENDING
    [12, [819200n, 819200n]], // MSGQUEUE
    [13, [0n, 0n]], // NICE
    [14, [0n, 0n]], // RTPRIO
    [15, inf], // RTTIME
  ]);
}

export interface ThreadGroupConfig<T extends Member = Member> {
  tgid: number;
  /** undefined: the parent lives outside the sandbox (the runtime), as for runc's init and exec. */
  parent?: ThreadGroup<T>;
  /** The signal the parent gets when this group ends (clone's low byte; SIGCHLD for fork; 0: none). */
  exitSignal?: number;
  /** Default: a group and session of its own (the runtime starts each process with setsid). */
  pgid?: number;
  sid?: number;
  /** Copied, never shared: each process has limits of its own. */
  rlimits?: Rlimits;
  exe: string;
  cmdline: string[];
  layout?: Layout;
}

export class ThreadGroup<T extends Member = Member> {
  readonly tgid: number;
  /** Its live tasks; the group is a zombie once the last one left. */
  readonly tasks = new Set<T>();
  /** Process-directed signals (kill(2), from outside) waiting for a task to take them. */
  pending = 0n;
  /** The siginfo of each queued instance of a pending signal (signals.ts). */
  readonly pendingInfo = new Map<number, Buffer[]>();
  /** The stop signal while the group is stopped (job control); undefined while it runs. */
  stopped: number | undefined;
  private resumed: Promise<void> | undefined;
  private resume: (() => void) | undefined;
  readonly rlimits: Rlimits;
  /** Set once: the first exit_group, fatal signal or last thread's exit decides it. */
  private status: ExitStatus | undefined;
  /** Changes when the parent ends first: the orphan goes to the nearest subreaper or init. */
  parent: ThreadGroup<T> | undefined;
  /** What the parent is sent when this group ends (0: nothing, the wait still reports it). */
  readonly exitSignal: number;
  readonly children = new Set<ThreadGroup<T>>();
  /** Children that ended and were not reaped yet (wait4 takes them). */
  readonly zombies = new Set<ThreadGroup<T>>();
  pgid: number;
  sid: number;
  /** Set by the pid namespace the group joins: drops it from there (once reaped). */
  forget: (() => void) | undefined;
  /** PR_SET_CHILD_SUBREAPER: orphans below it are reparented to it, not to init. */
  subreaper = false;
  /**
   * The pid namespace's init (Linux's SIGNAL_UNKILLABLE): a signal it has no handler for is
   * ignored, except SIGKILL and SIGSTOP from outside the container and its own faults.
   */
  unkillable = false;
  /** The executable's path in the container (/proc/<pid>/exe) and the argv it got (cmdline). */
  exe: string;
  cmdline: string[];
  /** Where the loader put the program; execve loads the next one the same way. */
  layout: Layout | undefined;
  /** When it started, on the hrtime clock (/proc/<pid>/stat's starttime). */
  readonly startNs = process.hrtime.bigint();
  /** A stop (the signal that stopped it) its parent's wait has not reported yet (WUNTRACED). */
  stopReport: number | undefined;
  /** A continue its parent's wait has not reported yet (WCONTINUED). */
  continueReport = false;
  /** The group called execve at least once (setpgid on it from its parent is EACCES). */
  execed = false;
  /** CPU time of its tasks' host contexts, in clock ticks, as they left (wait4's rusage). */
  readonly cpuTicks = { utime: 0, stime: 0 };
  /** CPU time of its reaped children and theirs (getrusage's RUSAGE_CHILDREN). */
  readonly childTicks = { utime: 0, stime: 0 };
  /** Notified when a child changes state (ends, stops, continues): wait4/waitid block on it. */
  readonly childEvents = new WaitQueue();
  private readonly ended: Promise<ExitStatus>;
  private resolveEnded: (s: ExitStatus) => void = () => {};

  constructor(c: ThreadGroupConfig<T>) {
    this.tgid = c.tgid;
    this.parent = c.parent;
    this.pgid = c.pgid ?? c.tgid;
    this.sid = c.sid ?? c.tgid;
    this.rlimits = new Map([...(c.rlimits ?? defaultRlimits())].map(([k, v]) => [k, [v[0], v[1]]]));
    this.exe = c.exe;
    this.cmdline = c.cmdline;
    this.layout = c.layout;
    this.exitSignal = c.exitSignal ?? 0;
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
    c.parent?.children.add(this);
  }

  /** 0: the parent is outside the sandbox. */
  get ppid(): number {
    return this.parent?.tgid ?? 0;
  }

  get exitStatus(): ExitStatus | undefined {
    return this.status;
  }

  /** The thread with tid = tgid, while it lives (the first task otherwise). */
  get leader(): T | undefined {
    // The last with it: after an exec from another thread, the old leader may still be leaving.
    let found: T | undefined;
    for (const t of this.tasks) if (t.tid === this.tgid) found = t;
    if (found) return found;
    return this.tasks.values().next().value;
  }

  /** The group is ending with `status` (the first cause wins); its tasks leave one by one. */
  exit(status: ExitStatus): void {
    this.status ??= status;
  }

  /** Resolves when the stopped group continues (SIGCONT) or is killed. */
  whenResumed(): Promise<void> {
    this.resumed ??= new Promise<void>((resolve) => {
      this.resume = resolve;
    });
    return this.resumed;
  }

  /** The group runs again: every task waiting in whenResumed() goes on. */
  resumeStopped(): void {
    this.resume?.();
    this.resumed = undefined;
    this.resume = undefined;
  }

  /** Resolves with the exit status once the last task left (the group is a zombie). */
  whenZombie(): Promise<ExitStatus> {
    return this.ended;
  }

  /**
   * A task left: the last one makes the group a zombie (a parent inside the kernel reaps it
   * with wait4; exit.ts decides the rest: reparenting, the exit signal, auto-reaping).
   * Returns whether it was the last.
   */
  taskLeft(task: T, status: ExitStatus): boolean {
    this.tasks.delete(task);
    if (this.tasks.size > 0) return false;
    this.exit(status);
    if (this.parent) this.parent.zombies.add(this);
    this.resolveEnded(this.status!);
    return true;
  }

  /** A child ended, stopped or continued: every wait of this group looks again. */
  childChanged(): void {
    this.childEvents.notify();
  }
}
