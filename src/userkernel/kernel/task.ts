// A task: the kernel's state for one application thread and the process it belongs to.
// One task per process for now (a container's init and each exec'd process); threads and
// fork will split this into thread, thread group and shared parts (address space,
// descriptors, signal handlers).
import type { AddressSpace } from "../mm/addrspace.js";
import type { Layout } from "../mm/layout.js";
import type { MemoryBudget } from "../mm/memfile.js";
import type { Platform } from "../platform/platform.js";
import type { Ctx, DirInode, Vfs } from "../vfs/index.js";
import type { FdTable } from "./fdtable.js";
import type { Blocked } from "./wait.js";

export interface Credentials {
  uid: number;
  euid: number;
  suid: number;
  gid: number;
  egid: number;
  sgid: number;
}

export interface SigAction {
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

export interface AltStack {
  sp: bigint;
  flags: number;
  size: bigint;
}

export type ExitStatus = { code: number } | { signal: number };

/** Sandbox-wide facts every task sees the same way. */
export interface KernelInfo {
  hostname: string;
  domainname: string;
  /** Real-time clock at boot, in ns since the epoch, and the monotonic origin. */
  bootRealtimeNs: bigint;
  bootHrtimeNs: bigint;
  /** Counts of unimplemented syscalls by name. */
  unimplemented: Map<string, number>;
  /** Where debug traces and the end-of-run report go. */
  log: (line: string) => void;
  debug: boolean;
  /** The sandbox's memory budget (--memory), shared by its processes; none: the host's memory. */
  budget?: MemoryBudget;
  /** How many processes the kernel runs (sysinfo's procs). */
  processCount?: () => number;
}

// Linux's RLIMIT_* numbers.
export const RLIMIT_STACK = 3;
export const RLIMIT_NOFILE = 7;
export const RLIM_INFINITY = 0xffffffffffffffffn;

function defaultRlimits(): Map<number, [bigint, bigint]> {
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

export class Task {
  /** The thread id: the pid, while every process has one thread. */
  readonly tid: number;
  /** 0: the parent lives outside the sandbox (the runtime), as for runc's init and exec. */
  readonly ppid = 0;
  creds: Credentials = { uid: 0, euid: 0, suid: 0, gid: 0, egid: 0, sgid: 0 };
  readonly rlimits = defaultRlimits();
  readonly sigactions = new Map<number, SigAction>();
  sigmask = 0n;
  /** Signals raised while blocked, waiting for delivery (which comes with the signal stage). */
  pendingSignals = 0n;
  altstack: AltStack = { sp: 0n, flags: 2 /* SS_DISABLE */, size: 0n };
  clearChildTid = 0;
  robustList = { head: 0n, len: 0n };
  exitStatus: ExitStatus | undefined;
  /** The thread name (PR_SET_NAME, /proc/pid/comm): the executable's base name at first. */
  comm = "";
  pdeathsig = 0;
  dumpable = 1;
  noNewPrivs = false;
  umask = 0o022;
  /** Supplementary groups (getgroups, permission checks). */
  groups: number[] = [];
  /** The file system tree when the sandbox has a rootfs; without one, path syscalls fail. */
  vfs: Vfs | undefined;
  /** The working directory (set with the VFS), and the root after chroot (the VFS's otherwise). */
  cwd: DirInode | undefined;
  root: DirInode | undefined;
  /** The executable's path in the container (/proc/self/exe) and the argv it got. */
  exe = "";
  cmdline: string[] = [];
  /** Waiting in a system call (read, sleep): /proc shows it as S, not R. */
  sleeping = false;
  /** When it started, on the hrtime clock (/proc/<pid>/stat's starttime). */
  readonly startNs = process.hrtime.bigint();
  /** Where the loader put the program; execve loads the next one the same way. */
  layout: Layout | undefined;

  constructor(
    readonly kernel: KernelInfo,
    readonly platform: Platform,
    readonly mm: AddressSpace,
    readonly fds: FdTable,
    /** The pid in the kernel's pid namespace (the container's init is 1). */
    readonly pid = 1,
  ) {
    this.tid = pid;
  }

  /**
   * The caller context of a VFS operation: the fs ids (effective ids), or the real ids for
   * access(2) without AT_EACCESS.
   */
  fsCtx(vfs: Vfs, real = false): Ctx {
    const c = this.creds;
    const ctx: Ctx = {
      cred: { uid: real ? c.uid : c.euid, gid: real ? c.gid : c.egid, groups: this.groups },
      cwd: this.cwd ?? vfs.root,
      pid: this.pid,
    };
    if (this.root) ctx.root = this.root;
    return ctx;
  }

  exit(status: ExitStatus): void {
    this.exitStatus ??= status;
  }

  /** The block (kernel/wait.ts) the task sleeps in, if any: /proc shows it as state S. */
  blockedOn: Blocked | undefined;

  /** End the task's current block with "interrupted" (a kill; later, an unblocked signal). */
  interrupt(): void {
    this.blockedOn?.interrupt();
  }
}
