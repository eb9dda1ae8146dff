// clone, clone3, fork, vfork: their argument shapes turned into one CloneRequest, which
// kernel/clone.ts checks and serves.
import { fail } from "../errno.js";
import {
  CLONE_DETACHED,
  CLONE_INTO_CGROUP,
  CLONE_PARENT,
  CLONE_PARENT_SETTID,
  CLONE_PIDFD,
  CLONE_THREAD,
  CLONE_VFORK,
  CLONE_VM,
  CSIGNAL,
  cloneTask,
} from "../kernel/clone.js";
import { addr, type Handler } from "./types.js";

const SIGCHLD = 17;
const NSIG = 64;

export const fork: Handler = (t) =>
  cloneTask(t, { flags: 0n, exitSignal: SIGCHLD, stack: 0n, tls: 0n, parentTid: 0, childTid: 0 });

export const vfork: Handler = (t) =>
  cloneTask(t, {
    flags: BigInt(CLONE_VM | CLONE_VFORK),
    exitSignal: SIGCHLD,
    stack: 0n,
    tls: 0n,
    parentTid: 0,
    childTid: 0,
  });

/** clone(flags, stack, parent_tid, child_tid, tls): x86-64's argument order. */
export const clone: Handler = (t, a) => {
  const raw = a[0]! & 0xffffffffn;
  const flags = raw & ~BigInt(CSIGNAL);
  // The legacy call has one pointer for both: the pidfd would land where the tid goes.
  if (flags & BigInt(CLONE_PIDFD) && flags & BigInt(CLONE_PARENT_SETTID)) fail("EINVAL");
  return cloneTask(t, {
    flags,
    // A thread sends nothing when it ends.
    exitSignal: flags & BigInt(CLONE_THREAD) ? 0 : Number(raw & BigInt(CSIGNAL)),
    stack: a[1]!,
    tls: a[4]!,
    parentTid: addr(a[2]),
    childTid: addr(a[3]),
  });
};

/** The sizes of struct clone_args: VER0 (64 bytes) to VER2 (88, with cgroup). */
const CLONE_ARGS_SIZE_VER0 = 64;
const CLONE_ARGS_SIZE_KNOWN = 88;
const PAGE_SIZE = 4096;
const MAX_PID_NS_LEVEL = 32;
const LEGACY_FLAGS = 0xffffffffn;

/** clone3(struct clone_args *, size): checked as clone3_args_valid and copy_clone_args_from_user do. */
export const clone3: Handler = (t, a) => {
  const size = addr(a[1]);
  if (size > PAGE_SIZE) fail("E2BIG");
  if (size < CLONE_ARGS_SIZE_VER0) fail("EINVAL");
  const raw = t.mm.read(addr(a[0]), size);
  // A newer struct than this kernel knows is fine only if the fields it does not know are 0.
  if (size > CLONE_ARGS_SIZE_KNOWN && raw.subarray(CLONE_ARGS_SIZE_KNOWN).some((b) => b !== 0)) fail("E2BIG");
  const buf = Buffer.alloc(CLONE_ARGS_SIZE_KNOWN);
  raw.copy(buf, 0, 0, Math.min(size, CLONE_ARGS_SIZE_KNOWN));
  const u = (i: number): bigint => buf.readBigUInt64LE(i * 8);
  const [flags, , childTid, parentTid, exitSignal, stack, stackSize, tls, setTid, setTidSize, cgroup] = [
    u(0),
    u(1),
    u(2),
    u(3),
    u(4),
    u(5),
    u(6),
    u(7),
    u(8),
    u(9),
    u(10),
  ];
  if (setTidSize > BigInt(MAX_PID_NS_LEVEL)) fail("EINVAL");
  if ((setTid === 0n) !== (setTidSize === 0n)) fail("EINVAL");
  if (cgroup > 0x7fffffffn || (size < CLONE_ARGS_SIZE_KNOWN && flags & CLONE_INTO_CGROUP)) fail("EINVAL");
  if (exitSignal & ~BigInt(CSIGNAL) || exitSignal > BigInt(NSIG)) fail("EINVAL");
  if (flags & ~(LEGACY_FLAGS | 0x100000000n | CLONE_INTO_CGROUP)) fail("EINVAL");
  if (flags & BigInt(CLONE_DETACHED | CSIGNAL)) fail("EINVAL");
  if (flags & BigInt(CLONE_THREAD | CLONE_PARENT) && exitSignal !== 0n) fail("EINVAL");
  if ((stack === 0n) !== (stackSize === 0n)) fail("EINVAL");
  // Choosing pids needs CAP_CHECKPOINT_RESTORE, a cgroup CAP over the cgroup file system:
  // a sandbox has neither (and no cgroup directory to give a descriptor of).
  if (setTidSize !== 0n) fail("EPERM");
  if (flags & CLONE_INTO_CGROUP) fail("EBADF");
  return cloneTask(t, {
    flags,
    exitSignal: Number(exitSignal),
    stack: stack === 0n ? 0n : stack + stackSize,
    tls,
    parentTid: addr(parentTid),
    childTid: addr(childTid),
  });
};
