// A task: the kernel's state for one application thread. What its process shares with other
// tasks lives in objects of their own, each shared or copied as clone(2)'s flags say: the
// thread group (thread-group.ts), the signal dispositions (signals-state.ts), the file-system
// context (fs-context.ts), the descriptor table (fdtable.ts) and the address space
// (mm/addrspace.ts). Every task is built by newTask() from one TaskConfig; nothing outside
// sets its fields afterwards.
import type { AddressSpace } from "../mm/addrspace.js";
import type { MemoryBudget } from "../mm/memfile.js";
import type { Context, CpuState, Platform } from "../platform/platform.js";
import type { Ctx, Vfs } from "../vfs/index.js";
import { accountThreadExit } from "./cpu-host.js";
import type { FdTable } from "./fdtable.js";
import type { FsContext } from "./fs-context.js";
import type { PidNamespace } from "./pidns.js";
import type { SignalHandlers } from "./signals-state.js";
import { type ExitStatus, ThreadGroup, type ThreadGroupConfig } from "./thread-group.js";

export type { SigAction } from "./signals-state.js";

import type { Blocked } from "./wait.js";

export { type ExitStatus, RLIM_INFINITY, RLIMIT_NOFILE, RLIMIT_STACK } from "./thread-group.js";

export interface Credentials {
  uid: number;
  euid: number;
  suid: number;
  gid: number;
  egid: number;
  sgid: number;
}

/** How an interrupted system call ends if a handler runs (syscall-restart.ts decides). */
export type RestartKind = "sys" | "nohand" | "intr";

export interface AltStack {
  sp: bigint;
  flags: number;
  size: bigint;
}

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
  /**
   * Start the run loop of a task made inside the kernel (clone, fork), tracked by the kernel
   * as the tasks it spawned are (killed and awaited at close). Set by the Kernel.
   */
  startTask?: (task: Task) => void;
  /** Makes the host address spaces of new processes (fork, execve). Set by the Kernel. */
  platform?: Platform;
}

/**
 * How a new task gets each part: `fresh` (a new object, owned by the task), `share` (the same
 * object as another task: CLONE_VM, CLONE_FILES, CLONE_FS, CLONE_SIGHAND) or `copy` (a copy
 * of another task's, as fork makes). The address space and the descriptor table cannot be
 * copied yet (fork's copy of private mappings and of open descriptions comes with fork).
 */
export type Part<T> = { fresh: T } | { share: T } | { copy: T };

export interface TaskConfig {
  kernel: KernelInfo;
  pidns: PidNamespace<Task>;
  /** A tid reserved with pidns.alloc() (the container's init gets 1); default: the next free one. */
  tid?: number;
  /** A new thread group led by this task, or an existing one to join (CLONE_THREAD). */
  group: { fresh: Omit<ThreadGroupConfig<Task>, "tgid"> } | { join: ThreadGroup<Task> };
  /** The thread's registers and FP state (the task owns them; the platform loads and saves them). */
  cpu: CpuState;
  /** The platform context (a host thread in mm's host address space) that runs its code. */
  ctx: Context;
  mm: { fresh: AddressSpace } | { share: AddressSpace };
  fds: Part<FdTable>;
  fs: Part<FsContext>;
  sighand: Part<SignalHandlers>;
  creds: Credentials;
  /** Supplementary groups. */
  groups: readonly number[];
  /** The thread name: the executable's base name at first. */
  comm: string;
  /** The signal mask (a new thread inherits its creator's). */
  sigmask?: bigint;
}

function part<T extends { copy(): T }>(p: Part<T>): T {
  if ("fresh" in p) return p.fresh;
  if ("share" in p) return p.share;
  return p.copy.copy();
}

export class Task {
  /** Changes once at most: a thread that execs takes its leader's tid (takeLeaderTid). */
  tid: number;
  readonly kernel: KernelInfo;
  readonly pidns: PidNamespace<Task>;
  readonly group: ThreadGroup<Task>;
  /** Registers as of the last stop (and FP state on demand): the task's own. */
  cpu: CpuState;
  /** The host thread that runs this task's application code. */
  ctx: Context;
  /** cpu, ctx and mm change only at execve (execInto), which gives the task new ones. */
  mm: AddressSpace;
  /** fds and sighand change only at execve (unshareForExec), to copies of the task's own. */
  fds: FdTable;
  readonly fs: FsContext;
  sighand: SignalHandlers;
  creds: Credentials;
  /** Supplementary groups (getgroups, permission checks). */
  groups: number[];
  sigmask: bigint;
  /** Thread-directed signals (tgkill, the kernel's own SIGPIPE) waiting for delivery. */
  pending = 0n;
  /** The siginfo of each queued instance of a pending signal (signals.ts). */
  readonly pendingInfo = new Map<number, Buffer[]>();
  /** How the system call the task returns from ends if a signal handler interrupts it. */
  restartKind: RestartKind | undefined;
  /**
   * Linux's restart block: how an interrupted relative sleep goes on (to its first deadline)
   * when it is restarted after a stop or an ignored signal, through restart_syscall. Set by
   * the sleep when interrupted; kept only while the syscall may restart.
   */
  restartBlock: (() => number | Promise<number>) | undefined;
  /** The mask to restore after a temporary one (sigsuspend, ppoll, pselect6) served its wait. */
  savedSigmask: bigint | undefined;
  /** The signals rt_sigtimedwait waits for (they wake the task instead of being delivered). */
  sigwaiting = 0n;
  altstack: AltStack = { sp: 0n, flags: 2 /* SS_DISABLE */, size: 0n };
  clearChildTid = 0;
  robustList = { head: 0n, len: 0n };
  /** The thread name (PR_SET_NAME, /proc/pid/comm). */
  comm: string;
  pdeathsig = 0;
  dumpable = 1;
  noNewPrivs = false;
  /** The block (kernel/wait.ts) the task sleeps in, if any: /proc shows it as state S. */
  blockedOn: Blocked | undefined;
  /** A vfork child: releases its parent, once, at its execve or its exit. */
  vforkDone: (() => void) | undefined;
  /** This thread's own end (exit(2)); the group's end ends it too. */
  private exited: ExitStatus | undefined;

  /** Use newTask(), which also enters the task into its group and the pid namespace. */
  constructor(c: TaskConfig, tid: number, group: ThreadGroup<Task>) {
    this.tid = tid;
    this.kernel = c.kernel;
    this.pidns = c.pidns;
    this.group = group;
    this.cpu = c.cpu;
    this.ctx = c.ctx;
    this.mm = "share" in c.mm ? c.mm.share.ref() : c.mm.fresh;
    this.fds = "share" in c.fds ? c.fds.share.ref() : part(c.fds);
    this.fs = part(c.fs);
    this.sighand = part(c.sighand);
    this.creds = { ...c.creds };
    this.groups = [...c.groups];
    this.comm = c.comm.slice(0, 15);
    this.sigmask = c.sigmask ?? 0n;
  }

  /** The process id: the thread group's. */
  get pid(): number {
    return this.group.tgid;
  }

  get ppid(): number {
    return this.group.ppid;
  }

  /** Set once the task is ending: by its own exit or its group's. */
  get exitStatus(): ExitStatus | undefined {
    return this.exited ?? this.group.exitStatus;
  }

  /** The thread ends (exit(2)); with it the group, if it was the last. */
  exit(status: ExitStatus): void {
    this.exited ??= status;
  }

  /**
   * Make the task look at itself soon, wherever it is (its group is killed; later, a signal
   * it does not block): application code running on its host thread is interrupted, and the
   * block (kernel/wait.ts) a system call sleeps in ends with "interrupted".
   */
  interrupt(): void {
    this.ctx.interrupt();
    this.blockedOn?.interrupt();
  }

  /** A pending signal this task does not block (or waits for in rt_sigtimedwait): a block ends at once. */
  signalPending(): boolean {
    if (this.pending === 0n && this.group.pending === 0n) return false;
    return ((this.pending | this.group.pending) & (~this.sigmask | this.sigwaiting)) !== 0n;
  }

  /**
   * A signal waits for this task: the block a system call sleeps in ends with "interrupted",
   * or running application code stops (the run loop's delivery stage then takes the signal).
   */
  signalWake(): void {
    if (this.blockedOn) this.blockedOn.interrupt();
    else this.ctx.interrupt();
  }

  /**
   * The caller context of a VFS operation: the fs ids (effective ids), or the real ids for
   * access(2) without AT_EACCESS.
   */
  fsCtx(vfs: Vfs, real = false): Ctx {
    const c = this.creds;
    const ctx: Ctx = {
      cred: { uid: real ? c.uid : c.euid, gid: real ? c.gid : c.egid, groups: this.groups },
      cwd: this.fs.cwd ?? vfs.root,
      pid: this.pid,
    };
    if (this.fs.root) ctx.root = this.fs.root;
    return ctx;
  }

  /** execve from a thread that is not the leader: it becomes the leader, with tid = tgid. */
  takeLeaderTid(): void {
    if (this.tid === this.group.tgid) return;
    const old = this.tid;
    this.tid = this.group.tgid;
    this.pidns.retid(this, old);
  }

  /**
   * execve past its point of no return: the new program's address space, the host thread in
   * it and fresh CPU state replace the old ones, which are released (the old address space
   * goes with its last user: a vfork parent keeps it).
   */
  execInto(mm: AddressSpace, ctx: Context, cpu: CpuState): void {
    const [oldMm, oldCtx] = [this.mm, this.ctx];
    this.mm = mm;
    this.ctx = ctx;
    this.cpu = cpu;
    oldCtx.release();
    oldMm.unref();
  }

  /**
   * execve: a descriptor table or handler set still shared with another process (CLONE_FILES,
   * CLONE_SIGHAND without CLONE_THREAD) becomes a copy of the task's own first, so that
   * closing the close-on-exec descriptors and resetting the handlers leaves the other process
   * alone (Linux's unshare_files, and de_thread's copy of the handlers).
   */
  unshareForExec(): void {
    const others = this.pidns.groupList().flatMap((g) => (g === this.group ? [] : [...g.tasks]));
    if (others.some((o) => o.fds === this.fds)) {
      const own = this.fds.copy();
      this.fds.unref();
      this.fds = own;
    }
    if (others.some((o) => o.sighand === this.sighand)) this.sighand = this.sighand.copy();
  }

  /**
   * The task is gone: its host thread is released, its references to the shared parts
   * dropped (the last closes the descriptors; the address space's last releases its host
   * address space, ending every host thread in it, and frees the memory), and it leaves its
   * group and the pid namespace; the group's last task makes it a zombie.
   */
  release(): void {
    const status = this.exitStatus ?? { signal: 9 };
    // Its CPU time stays with the process (getrusage, times), read while its host thread lives.
    accountThreadExit(this.group, this.mm.hostPid, this.ctx.hostTid);
    this.ctx.release();
    this.fds.unref();
    this.mm.unref();
    this.group.taskLeft(this, status);
    this.pidns.remove(this);
  }
}

/** The one way a task is made. */
export function newTask(c: TaskConfig): Task {
  const tid = c.tid ?? c.pidns.alloc();
  const group = "join" in c.group ? c.group.join : new ThreadGroup<Task>({ ...c.group.fresh, tgid: tid });
  const task = new Task(c, tid, group);
  group.tasks.add(task);
  c.pidns.add(task);
  return task;
}
