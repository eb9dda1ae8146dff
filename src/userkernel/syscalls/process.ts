// Process and thread bookkeeping: exit, ids, TLS register, futex and robust-list
// registration, resource limits (the thread group's).
import { fail } from "../errno.js";
import { RLIM_INFINITY, RLIMIT_NOFILE } from "../kernel/task.js";
import { addr, type Handler, int } from "./types.js";

// The thread's exit ends the process once it is the group's last (the run loop's exit stage).
export const exit: Handler = (_t, a) => ({ kind: "exit", status: { code: int(a[0]) & 0xff }, group: false });

export const exitGroup: Handler = (_t, a) => ({
  kind: "exit",
  status: { code: int(a[0]) & 0xff },
  group: true,
});

export const getpid: Handler = (t) => t.pid;
export const getppid: Handler = (t) => t.ppid;
export const gettid: Handler = (t) => t.tid;

export const setTidAddress: Handler = (t, a) => {
  t.clearChildTid = addr(a[0]);
  return t.tid;
};

/** sizeof(struct robust_list_head) on x86-64. */
const ROBUST_LIST_HEAD_SIZE = 24n;

export const setRobustList: Handler = (t, a) => {
  if (a[1] !== ROBUST_LIST_HEAD_SIZE) fail("EINVAL");
  t.robustList = { head: a[0]!, len: a[1]! };
  return 0;
};

const ARCH_SET_GS = 0x1001;
const ARCH_SET_FS = 0x1002;
const ARCH_GET_FS = 0x1003;
const ARCH_GET_GS = 0x1004;
/** Highest canonical user address: the host refuses larger segment bases. */
const MAX_BASE = 0x7fff_ffff_f000n;

export const archPrctl: Handler = (t, a) => {
  const code = int(a[0]);
  const regs = t.cpu.regs;
  switch (code) {
    case ARCH_SET_FS:
    case ARCH_SET_GS:
      if (a[1]! >= MAX_BASE) fail("EPERM");
      regs.set(code === ARCH_SET_FS ? "fs_base" : "gs_base", a[1]!);
      t.cpu.regsChanged();
      return 0;
    case ARCH_GET_FS:
    case ARCH_GET_GS:
      t.mm.writeU64(addr(a[1]), regs.get(code === ARCH_GET_FS ? "fs_base" : "gs_base"));
      return 0;
    default:
      // CET, CPUID faulting, AMX permissions: not offered.
      return fail("EINVAL");
  }
};

const RLIM_NLIMITS = 16;

export const prlimit64: Handler = (t, a) => {
  const [pid, resource, newp, oldp] = [int(a[0]), int(a[1]), addr(a[2]), addr(a[3])];
  if (pid !== 0 && pid !== t.pid) fail("ESRCH");
  if (resource < 0 || resource >= RLIM_NLIMITS) fail("EINVAL");
  const cur = t.group.rlimits.get(resource)!;
  let next: [bigint, bigint] | undefined;
  if (newp !== 0) {
    const b = t.mm.read(newp, 16);
    next = [b.readBigUInt64LE(0), b.readBigUInt64LE(8)];
    if (next[0] > next[1]) fail("EINVAL");
    // Raising a hard limit needs CAP_SYS_RESOURCE, which a sandbox does not have.
    if (next[1] > cur[1]) fail("EPERM");
    if (resource === RLIMIT_NOFILE && next[1] !== RLIM_INFINITY && next[1] > 1048576n) fail("EPERM");
  }
  if (oldp !== 0) {
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(cur[0], 0);
    b.writeBigUInt64LE(cur[1], 8);
    t.mm.write(oldp, b);
  }
  if (next) {
    t.group.rlimits.set(resource, next);
    if (resource === RLIMIT_NOFILE) t.fds.limit = Number(next[0] > 1048576n ? 1048576n : next[0]);
  }
  return 0;
};

export const getrlimit: Handler = (t, a) => prlimit64(t, [0n, a[0]!, 0n, a[1]!]);
export const setrlimit: Handler = (t, a) => prlimit64(t, [0n, a[0]!, a[1]!, 0n]);
