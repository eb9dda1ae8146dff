// What /proc knows of the sandbox's processes: the kernel's task list provides these views.
import type { FileDescription } from "../kernel/fdtable.js";

/** One mapping of /proc/<pid>/maps, as Linux prints it. */
export interface MapView {
  start: number;
  end: number;
  /** PROT_READ | PROT_WRITE | PROT_EXEC bits. */
  prot: number;
  shared: boolean;
  /** The offset in the mapped file (0 for anonymous memory). */
  offset: number;
  /** A path, "[heap]", "[stack]", or "" for anonymous memory. */
  name: string;
}

/** One thread of a process, for /proc/<pid>/task/<tid>. */
export interface ThreadView {
  tid: number;
  /** The thread's name (PR_SET_NAME). */
  comm: string;
  state: () => "R" | "S";
}

/** What /proc shows of one process of the sandbox; the kernel's task list provides it. */
export interface ProcessView {
  pid: number;
  ppid: number;
  /** argv, as byte strings. */
  cmdline: string[];
  /** The initial environment as the process's memory holds it (NUL-terminated strings). */
  environ: () => Buffer;
  /** Where the loader put its arguments, environment and entry stack pointer (stat's fields 28, 48-51). */
  layout: () => {
    startStack: number;
    argStart: number;
    argEnd: number;
    envStart: number;
    envEnd: number;
    brkStart: number;
  };
  /** The auxiliary vector the loader gave it (/proc/<pid>/auxv: 16-byte pairs to AT_NULL). */
  auxv: () => Buffer;
  /** The executable's path in the container. */
  exe: string;
  /** The working directory's path in the container. */
  cwd: () => string;
  /** The root directory's path (after chroot; "/" otherwise). */
  root: () => string;
  uid: number;
  gid: number;
  groups: readonly number[];
  umask: number;
  /** The thread name (PR_SET_NAME; the executable's base name at first). */
  comm: string;
  /** A write to /proc/<pid>/comm (already cut to 15 bytes). */
  setComm: (name: string) => void;
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
  /** The process's descriptors, for /proc/<pid>/fd. */
  fds: () => Map<number, FileDescription>;
  /** FD_CLOEXEC of a descriptor (fdinfo's flags show it as O_CLOEXEC). */
  cloexec: (fd: number) => boolean;
  /** /proc/<pid>/mem: bytes at `addr` up to the first unmapped page (EIO if that is the first). */
  memRead: (addr: number, length: number) => Buffer;
  /** Writes whatever the protections (as ptrace's FOLL_FORCE); bytes written, EIO as memRead. */
  memWrite: (addr: number, data: Buffer) => number;
  /** Its mappings, lowest first. */
  maps: () => MapView[];
  /** RLIMIT_* number -> [soft, hard] (RLIM_INFINITY as 2^64-1). */
  rlimits: () => ReadonlyMap<number, readonly [bigint, bigint]>;
  /** /proc/<pid>/oom_score_adj, -1000..1000. */
  oomScoreAdj: number;
  /** Its threads, ascending by tid (/proc/<pid>/task, Threads:). */
  threads: () => ThreadView[];
  /** The host and domain names of its UTS namespace (/proc/sys/kernel/hostname, domainname). */
  hostname: () => string;
  domainname: () => string;
}

export interface ProcessSource {
  get(pid: number): ProcessView | undefined;
  pids(): number[];
}
