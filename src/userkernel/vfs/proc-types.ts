// What /proc knows of the sandbox's processes: the kernel's task list provides these views.
import type { FileDescription } from "../kernel/fdtable.js";

/** What /proc shows of one process of the sandbox; the kernel's task list provides it. */
export interface ProcessView {
  pid: number;
  ppid: number;
  /** argv, as byte strings. */
  cmdline: string[];
  /** The executable's path in the container. */
  exe: string;
  /** The working directory's path in the container. */
  cwd: () => string;
  uid: number;
  gid: number;
  groups: readonly number[];
  umask: number;
  /** The thread name (PR_SET_NAME; the executable's base name at first). */
  comm: string;
  /** R while it runs or a system call is served, S while it waits in one (read, sleep). */
  state: () => "R" | "S";
  /** When it started, on the hrtime clock. */
  startNs: bigint;
  /** CPU time (its stub's, in CLK_TCK ticks), mapped bytes, resident pages. */
  usage: () => { utimeTicks: number; stimeTicks: number; vsize: number; rssPages: number };
  /** Signal sets as bit masks (bit n-1 for signal n). */
  signals: () => { pending: bigint; blocked: bigint; ignored: bigint; caught: bigint };
  /** Process group and session (the pid when not given). */
  pgid?: number;
  sid?: number;
  /** Its threads' tids, ascending (/proc/<pid>/task, Threads:); one thread when not given. */
  tids?: () => number[];
  /** The process's descriptors, for /proc/<pid>/fd. */
  fds: () => Map<number, FileDescription>;
}

export interface ProcessSource {
  get(pid: number): ProcessView | undefined;
  pids(): number[];
}
