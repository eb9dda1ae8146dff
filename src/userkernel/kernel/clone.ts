// clone(2) in all its shapes (fork, vfork, clone, clone3): Linux's flag rules, then a new
// task built by newTask() with each part shared or copied as the flags say. A new process
// gets a new host address space holding a copy of the parent's memory (AddressSpace.fork:
// private mappings copied, shared ones shared), a copy of the descriptor table, the signal
// dispositions and the file-system context; the child returns 0 from the call with the
// parent's registers otherwise (the new stack and TLS when given).
import { fail, KernelError } from "../errno.js";
import type { AddressSpace } from "../mm/addrspace.js";
import type { Context, CpuState, HostAddressSpace } from "../platform/platform.js";
import { newTask, type Task } from "./task.js";
import { ALL_EVENTS, block, WaitQueue } from "./wait.js";

export const CSIGNAL = 0xff;
export const CLONE_VM = 0x100;
export const CLONE_FS = 0x200;
export const CLONE_FILES = 0x400;
export const CLONE_SIGHAND = 0x800;
export const CLONE_PIDFD = 0x1000;
export const CLONE_PTRACE = 0x2000;
export const CLONE_VFORK = 0x4000;
export const CLONE_PARENT = 0x8000;
export const CLONE_THREAD = 0x10000;
export const CLONE_NEWNS = 0x20000;
export const CLONE_SYSVSEM = 0x40000;
export const CLONE_SETTLS = 0x80000;
export const CLONE_PARENT_SETTID = 0x100000;
export const CLONE_CHILD_CLEARTID = 0x200000;
export const CLONE_DETACHED = 0x400000;
export const CLONE_UNTRACED = 0x800000;
export const CLONE_CHILD_SETTID = 0x1000000;
export const CLONE_NEWCGROUP = 0x2000000;
export const CLONE_NEWUTS = 0x4000000;
export const CLONE_NEWIPC = 0x8000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
export const CLONE_IO = 0x80000000;
/** clone3 only. */
export const CLONE_CLEAR_SIGHAND = 0x100000000n;
export const CLONE_INTO_CGROUP = 0x200000000n;

const NAMESPACES =
  CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
const NO_SYSCALL = 0xffffffffffffffffn;

/** One clone request, as clone(2) or clone3(2) gave it. */
export interface CloneRequest {
  /** The flags without the exit signal (clone3's 64-bit flags, clone's with CSIGNAL masked). */
  flags: bigint;
  exitSignal: number;
  /** The child's stack pointer (0: the parent's). */
  stack: bigint;
  tls: bigint;
  parentTid: number;
  childTid: number;
}

function quietly(write: () => void): void {
  try {
    write();
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
  }
}

/**
 * A host failure to make the child's stub or thread (out of processes, memory) is the
 * program's EAGAIN, as a fork that cannot get a task is on Linux; the kernel logs why.
 */
export function hostFailureAsErrno<T>(t: Task, what: string, make: () => T): T {
  try {
    return make();
  } catch (e) {
    if (e instanceof KernelError) throw e;
    t.kernel.log(`moat userkernel: ${what} in pid ${t.pid} failed on the host: ${(e as Error).message}`);
    return fail("EAGAIN");
  }
}

/** Linux's copy_process checks, in its order, with its errnos. */
function check(t: Task, r: CloneRequest): void {
  const f = Number(r.flags & 0xffffffffn);
  if ((f & (CLONE_NEWNS | CLONE_FS)) === (CLONE_NEWNS | CLONE_FS)) fail("EINVAL");
  if ((f & (CLONE_NEWUSER | CLONE_FS)) === (CLONE_NEWUSER | CLONE_FS)) fail("EINVAL");
  // Threads share handlers, handlers need a shared address space.
  if (f & CLONE_THREAD && !(f & CLONE_SIGHAND)) fail("EINVAL");
  if (f & CLONE_SIGHAND && !(f & CLONE_VM)) fail("EINVAL");
  // The init of a namespace can have no sibling.
  if (f & CLONE_PARENT && t.group.tgid === 1) fail("EINVAL");
  if (f & CLONE_THREAD && f & (CLONE_NEWUSER | CLONE_NEWPID)) fail("EINVAL");
  if (r.flags & CLONE_CLEAR_SIGHAND && f & CLONE_SIGHAND) fail("EINVAL");
  // New namespaces need CAP_SYS_ADMIN, which no process of a sandbox has.
  if (f & NAMESPACES) fail("EPERM");
  if (f & CLONE_PIDFD) fail("ENOSYS", "pidfd");
}

/** CLONE_VM: a new host thread in the caller's host address space, the memory shared. */
function threadIn(t: Task): { mm: AddressSpace; ctx: Context } {
  const host = t.mm.host;
  if (!("newContext" in host)) return fail("ENOSYS", "this address space has no host threads");
  return { mm: t.mm, ctx: (host as HostAddressSpace).newContext(t.ctx) };
}

/** A new process: a new host address space holding a copy of the caller's memory. */
function processCopy(t: Task): { mm: AddressSpace; ctx: Context } {
  const platform = t.kernel.platform;
  if (!platform) return fail("ENOSYS", "the kernel has no platform to make address spaces with");
  const host = platform.newAddressSpace(t.mm.mem.fd);
  let mm: AddressSpace;
  try {
    mm = t.mm.fork(host);
  } catch (e) {
    host.release();
    throw e;
  }
  try {
    return { mm, ctx: host.newContext() };
  } catch (e) {
    mm.unref();
    throw e;
  }
}

/** CLONE_THREAD: a task joining the caller's group, sharing its address space. */
function newThread(t: Task, f: number, cpu: CpuState, ctx: Context): Task {
  return newTask({
    kernel: t.kernel,
    pidns: t.pidns,
    group: { join: t.group },
    cpu,
    ctx,
    mm: { share: t.mm },
    fds: f & CLONE_FILES ? { share: t.fds } : { copy: t.fds },
    fs: f & CLONE_FS ? { share: t.fs } : { copy: t.fs },
    sighand: { share: t.sighand },
    creds: t.creds,
    groups: t.groups,
    comm: t.comm,
    sigmask: t.sigmask,
  });
}

/** A new thread group, led by the new task. */
function newProcess(
  t: Task,
  f: number,
  r: CloneRequest,
  cpu: CpuState,
  ctx: Context,
  mm: AddressSpace,
): Task {
  const parent = f & CLONE_PARENT ? t.group.parent : t.group;
  const g = t.group;
  return newTask({
    kernel: t.kernel,
    pidns: t.pidns,
    group: {
      fresh: {
        ...(parent ? { parent } : {}),
        exitSignal: r.exitSignal,
        pgid: g.pgid,
        sid: g.sid,
        rlimits: g.rlimits,
        exe: g.exe,
        cmdline: g.cmdline,
        ...(g.layout ? { layout: g.layout } : {}),
      },
    },
    cpu,
    ctx,
    mm: mm === t.mm ? { share: mm } : { fresh: mm },
    fds: f & CLONE_FILES ? { share: t.fds } : { copy: t.fds },
    fs: f & CLONE_FS ? { share: t.fs } : { copy: t.fs },
    sighand: f & CLONE_SIGHAND ? { share: t.sighand } : { copy: t.sighand },
    creds: t.creds,
    groups: t.groups,
    comm: t.comm,
    sigmask: t.sigmask,
  });
}

/**
 * The clone itself: returns the new task's tid (its pid for a new process) once it runs;
 * a vfork parent gets the promise of it, resolved once the child execs or ends.
 */
export function cloneTask(t: Task, r: CloneRequest): number | Promise<number> {
  check(t, r);
  const f = Number(r.flags & 0xffffffffn);
  const { mm, ctx } = hostFailureAsErrno(t, "clone", () => (f & CLONE_VM ? threadIn(t) : processCopy(t)));
  // The child's registers: the parent's, returning 0, on its own stack and TLS if given.
  const cpu = t.cpu.clone();
  cpu.regs.set("rax", 0n);
  cpu.regs.set("orig_rax", NO_SYSCALL);
  if (r.stack !== 0n) cpu.regs.set("rsp", r.stack);
  if (f & CLONE_SETTLS) cpu.regs.set("fs_base", r.tls);
  cpu.regsChanged();
  const child = f & CLONE_THREAD ? newThread(t, f, cpu, ctx) : newProcess(t, f, r, cpu, ctx, mm);
  if (r.flags & CLONE_CLEAR_SIGHAND) child.sighand.resetForExec();
  // A thread (shared memory, no vfork) starts without the creator's alternate stack.
  if (!(f & CLONE_VM) || f & CLONE_VFORK) child.altstack = { ...t.altstack };
  child.noNewPrivs = t.noNewPrivs;
  child.dumpable = t.dumpable;
  // Linux ignores a fault in these writes: the child runs, the word stays as it was.
  if (f & CLONE_CHILD_SETTID) quietly(() => child.mm.writeU32(r.childTid, child.tid));
  if (f & CLONE_CHILD_CLEARTID) child.clearChildTid = r.childTid;
  if (f & CLONE_PARENT_SETTID) quietly(() => t.mm.writeU32(r.parentTid, child.tid));
  const start = t.kernel.startTask;
  if (!start) {
    child.group.exit({ signal: 9 });
    throw new Error("the kernel did not set startTask");
  }
  if (!(f & CLONE_VFORK)) {
    start(child);
    return child.tid;
  }
  // The parent sleeps until the child execs or ends; only its own death ends the wait
  // early (Linux's vfork wait is killable, not interruptible).
  const released = new WaitQueue();
  let done = false;
  child.vforkDone = () => {
    done = true;
    released.notify();
  };
  start(child);
  return (async () => {
    while (!done && !t.exitStatus) await block(t, [[released, ALL_EVENTS]], undefined, "vfork");
    return child.tid;
  })();
}
