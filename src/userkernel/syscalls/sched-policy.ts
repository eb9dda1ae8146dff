// How a process asks to be scheduled: CPU affinity, the scheduling policy and its
// parameters, nice values, I/O priority, and getcpu and membarrier. The sandbox's CPUs are
// the host CPUs moat may run on (its stubs inherit that set); the values a process sets are
// recorded per process (Linux keeps them per thread) and read back, and a nice value at or
// above 0 is applied to its threads' stubs on the host (a lower one would take CPU from the
// host: the stubs stay at 0). A call may name any task of the sandbox by its tid.
import { readFileSync } from "node:fs";
import * as os from "node:os";
import { membarrierGlobal, schedRrGetInterval as rrInterval } from "../../sys/process.js";
import { fail } from "../errno.js";
import { procState } from "../kernel/proc-state.js";
import type { Task } from "../kernel/task.js";
import { addr, type Handler, int, uint } from "./types.js";

let sandboxCpus: bigint | undefined;

/** The CPUs this host lets moat run on (Cpus_allowed of its /proc/self/status), bit n for CPU n. */
function allowedCpus(): bigint {
  if (sandboxCpus === undefined) {
    try {
      const m = /^Cpus_allowed:\s*([0-9a-f,]+)$/m.exec(readFileSync("/proc/self/status", "latin1"));
      sandboxCpus = m ? BigInt(`0x${m[1]!.replaceAll(",", "")}`) : 0n;
    } catch {
      sandboxCpus = 0n;
    }
    if (sandboxCpus === 0n) sandboxCpus = (1n << BigInt(Math.max(1, os.cpus().length))) - 1n;
  }
  return sandboxCpus;
}

/** cpumask_size(): the mask's bytes, whole longs covering every CPU number. */
function maskBytes(): number {
  return Math.max(1, Math.ceil(allowedCpus().toString(2).length / 64)) * 8;
}

/**
 * The task a scheduling call names: 0 is the caller, any other number a tid of the sandbox
 * (Linux's find_process_by_pid: ESRCH when there is none, a negative number included).
 */
function taskOf(t: Task, pid: number): Task {
  if (pid === 0) return t;
  return (pid > 0 ? t.pidns.task(pid) : undefined) ?? fail("ESRCH");
}

/** The calls that refuse a negative pid with EINVAL before they look it up. */
function taskOfPid(t: Task, pid: number): Task {
  if (pid < 0) fail("EINVAL");
  return taskOf(t, pid);
}

/** Changing another process's scheduling takes the same owner (check_same_owner) or CAP_SYS_NICE. */
function mayAlter(t: Task, target: Task): void {
  const [c, o] = [t.creds, target.creds];
  if (target !== t && c.euid !== 0 && c.euid !== o.euid && c.euid !== o.uid) fail("EPERM");
}

const affinityOf = (t: Task): bigint => procState(t).affinity ?? allowedCpus();

export const schedGetaffinity: Handler = (t, a) => {
  // Linux checks the length before it looks the task up.
  const len = uint(a[1]);
  const size = maskBytes();
  if (len * 8 < allowedCpus().toString(2).length || len % 8 !== 0) fail("EINVAL");
  const target = taskOf(t, int(a[0]));
  const out = Buffer.alloc(Math.min(len, size));
  let m = affinityOf(target);
  for (let i = 0; i < out.length; i++, m >>= 8n) out[i] = Number(m & 0xffn);
  t.mm.write(addr(a[2]), out);
  return out.length;
};

export const schedSetaffinity: Handler = (t, a) => {
  const target = taskOf(t, int(a[0]));
  mayAlter(t, target);
  const raw = t.mm.read(addr(a[2]), Math.min(uint(a[1]), maskBytes()));
  let m = 0n;
  for (let i = raw.length - 1; i >= 0; i--) m = (m << 8n) | BigInt(raw[i]!);
  const kept = m & allowedCpus();
  if (kept === 0n) fail("EINVAL");
  procState(target).affinity = kept;
  return 0;
};

/** The CPU the stub last ran on (proc(5) stat field 39), if the process allows it. */
function hostCpu(t: Task): number | undefined {
  try {
    const stat = readFileSync(`/proc/${t.mm.hostPid}/stat`, "latin1");
    const cpu = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[36]);
    return Number.isInteger(cpu) ? cpu : undefined;
  } catch {
    return undefined;
  }
}

export const getcpu: Handler = (t, a) => {
  const mask = affinityOf(t);
  let cpu = hostCpu(t);
  if (cpu === undefined || !((mask >> BigInt(cpu)) & 1n))
    cpu = mask.toString(2).split("").reverse().indexOf("1");
  if (a[0] !== 0n) t.mm.writeU32(addr(a[0]), cpu);
  // One NUMA node.
  if (a[1] !== 0n) t.mm.writeU32(addr(a[1]), 0);
  return 0;
};

const SCHED_OTHER = 0;
const SCHED_FIFO = 1;
const SCHED_RR = 2;
const SCHED_BATCH = 3;
const SCHED_IDLE = 5;
const SCHED_DEADLINE = 6;
const SCHED_RESET_ON_FORK = 0x40000000;

export const schedGetscheduler: Handler = (t, a) => {
  const s = procState(taskOfPid(t, int(a[0])));
  return s.policy | (s.resetOnFork ? SCHED_RESET_ON_FORK : 0);
};

export const schedGetparam: Handler = (t, a) => {
  if (a[1] === 0n) fail("EINVAL");
  taskOfPid(t, int(a[0]));
  // Normal policies have priority 0.
  t.mm.writeU32(addr(a[1]), 0);
  return 0;
};

/** Real-time policies would take host CPUs from everything else: refused as for a container without CAP_SYS_NICE. */
function checkPolicy(policy: number, priority: number): void {
  if (policy === SCHED_FIFO || policy === SCHED_RR) {
    if (priority < 1 || priority > 99) fail("EINVAL");
    fail("EPERM", "real-time scheduling");
  }
  if (policy !== SCHED_OTHER && policy !== SCHED_BATCH && policy !== SCHED_IDLE) fail("EINVAL");
  if (priority !== 0) fail("EINVAL");
}

export const schedSetscheduler: Handler = (t, a) => {
  if (a[2] === 0n || int(a[0]) < 0) fail("EINVAL");
  const priority = t.mm.readU32(addr(a[2])) | 0;
  const target = taskOf(t, int(a[0]));
  const policy = int(a[1]) & ~SCHED_RESET_ON_FORK;
  checkPolicy(policy, priority);
  mayAlter(t, target);
  const s = procState(target);
  s.policy = policy;
  s.resetOnFork = (int(a[1]) & SCHED_RESET_ON_FORK) !== 0;
  return 0;
};

export const schedSetparam: Handler = (t, a) => {
  if (a[1] === 0n || int(a[0]) < 0) fail("EINVAL");
  const priority = t.mm.readU32(addr(a[1])) | 0;
  const target = taskOf(t, int(a[0]));
  checkPolicy(procState(target).policy, priority);
  mayAlter(t, target);
  return 0;
};

/** The host's round-robin quantum for the stub that runs the task (the host schedules it). */
export const schedRrGetInterval: Handler = (t, a) => {
  const target = taskOfPid(t, int(a[0]));
  const ts = rrInterval(target.ctx.hostTid);
  const b = Buffer.alloc(16);
  b.writeBigInt64LE(BigInt(ts.sec), 0);
  b.writeBigInt64LE(BigInt(ts.nsec), 8);
  t.mm.write(addr(a[1]), b);
  return 0;
};

export const schedGetPriorityMax: Handler = (_t, a) => priorityRange(int(a[0]))[1];
export const schedGetPriorityMin: Handler = (_t, a) => priorityRange(int(a[0]))[0];

function priorityRange(policy: number): [number, number] {
  if (policy === SCHED_FIFO || policy === SCHED_RR) return [1, 99];
  if (policy === SCHED_OTHER || policy === SCHED_BATCH || policy === SCHED_IDLE || policy === SCHED_DEADLINE)
    return [0, 0];
  return fail("EINVAL");
}

/** struct sched_attr as this kernel knows it (SCHED_ATTR_SIZE_VER1) and its oldest size. */
const SCHED_ATTR_SIZE = 56;
const SCHED_ATTR_SIZE_VER0 = 48;
const SCHED_FLAG_RESET_ON_FORK = 0x01;
const SCHED_FLAG_KEEP_POLICY = 0x08;
const SCHED_FLAG_KEEP_PARAMS = 0x10;
const SCHED_FLAG_ALL = 0x7f;
const PAGE_SIZE = 4096;

/** sched_getattr(pid, attr, size, flags): the policy, nice value and priority, in as much of the struct as the caller has. */
export const schedGetattr: Handler = (t, a) => {
  const pid = int(a[0]);
  const usize = uint(a[2]);
  if (a[1] === 0n || pid < 0 || usize < SCHED_ATTR_SIZE_VER0 || usize > PAGE_SIZE || uint(a[3]) !== 0)
    fail("EINVAL");
  const s = procState(taskOf(t, pid));
  const b = Buffer.alloc(SCHED_ATTR_SIZE);
  const size = Math.min(usize, SCHED_ATTR_SIZE);
  b.writeUInt32LE(size, 0);
  b.writeUInt32LE(s.policy, 4);
  b.writeBigUInt64LE(s.resetOnFork ? BigInt(SCHED_FLAG_RESET_ON_FORK) : 0n, 8);
  b.writeInt32LE(s.nice, 16);
  // sched_priority 0 (normal policies); runtime, deadline, period 0; util_min 0, util_max 1024.
  b.writeUInt32LE(1024, 52);
  t.mm.write(addr(a[1]), b.subarray(0, size));
  return 0;
};

/** sched_setattr(pid, attr, flags): normal policies and the nice value; sizes checked as Linux's sched_copy_attr. */
export const schedSetattr: Handler = (t, a) => {
  const pid = int(a[0]);
  const at = addr(a[1]);
  if (a[1] === 0n || pid < 0 || uint(a[2]) !== 0) fail("EINVAL");
  let size = t.mm.readU32(at);
  if (size === 0) size = SCHED_ATTR_SIZE_VER0;
  const tooBig = (): never => {
    t.mm.writeU32(at, SCHED_ATTR_SIZE);
    return fail("E2BIG");
  };
  if (size < SCHED_ATTR_SIZE_VER0 || size > PAGE_SIZE) tooBig();
  // A newer struct is fine as long as the fields this kernel does not know are zero.
  if (size > SCHED_ATTR_SIZE && t.mm.read(at + SCHED_ATTR_SIZE, size - SCHED_ATTR_SIZE).some((x) => x !== 0))
    tooBig();
  const raw = Buffer.alloc(SCHED_ATTR_SIZE);
  raw.set(t.mm.read(at, Math.min(size, SCHED_ATTR_SIZE)));
  const target = taskOf(t, pid);
  const policy = raw.readUInt32LE(4);
  const flags64 = raw.readBigUInt64LE(8);
  if (flags64 & ~BigInt(SCHED_FLAG_ALL)) fail("EINVAL");
  const flags = Number(flags64);
  const nice = Math.min(19, Math.max(-20, raw.readInt32LE(16)));
  const priority = raw.readUInt32LE(20) | 0;
  const s = procState(target);
  if (!(flags & SCHED_FLAG_KEEP_POLICY)) {
    // Deadline scheduling needs its runtime <= deadline <= period, then CAP_SYS_NICE.
    if (policy === SCHED_DEADLINE) {
      const [runtime, deadline] = [raw.readBigUInt64LE(24), raw.readBigUInt64LE(32)];
      if (runtime === 0n || deadline === 0n || runtime > deadline) fail("EINVAL");
      fail("EPERM", "deadline scheduling");
    }
    checkPolicy(policy, priority);
  }
  mayAlter(t, target);
  if (!(flags & SCHED_FLAG_KEEP_PARAMS)) setNice(t, target, nice);
  if (!(flags & SCHED_FLAG_KEEP_POLICY)) s.policy = policy;
  s.resetOnFork = (flags & SCHED_FLAG_RESET_ON_FORK) !== 0;
  return 0;
};

const PRIO_PROCESS = 0;

/** One live task of each process of the sandbox. */
function processes(t: Task): Task[] {
  return t.pidns.groupList().flatMap((g) => {
    const first = g.tasks.values().next().value;
    return first ? [first] : [];
  });
}

/**
 * The processes `which`/`who` name (getpriority, setpriority, ioprio_*): one by its id, a
 * process group, or a user's (real uid) processes; 0 is the caller's own. ESRCH when none.
 */
function targets(t: Task, which: "process" | "pgrp" | "user", who: number): Task[] {
  let out: Task[];
  if (which === "process") out = [taskOf(t, who)];
  else if (which === "pgrp") {
    const pgid = who === 0 ? t.group.pgid : who;
    out = processes(t).filter((p) => p.group.pgid === pgid);
  } else {
    const uid = who === 0 ? t.creds.uid : who;
    out = processes(t).filter((p) => p.creds.uid === uid);
  }
  return out.length > 0 ? out : fail("ESRCH");
}

/** PRIO_PROCESS, PRIO_PGRP, PRIO_USER (IOPRIO_WHO_* are one more). */
const KINDS = ["process", "pgrp", "user"] as const;

/** `which` as the call numbers it (from `first`: PRIO_PROCESS is 0, IOPRIO_WHO_PROCESS 1); EINVAL for another. */
function named(t: Task, which: number, first: number, who: number): Task[] {
  const kind = KINDS[which - first];
  return kind ? targets(t, kind, who) : fail("EINVAL");
}

const prioTargets = (t: Task, which: number, who: number): Task[] => named(t, which, PRIO_PROCESS, who);

/** The raw syscall's value is 20 - nice (1..40), so that it is never negative; glibc converts. */
export const getpriority: Handler = (t, a) =>
  Math.max(...prioTargets(t, int(a[0]), int(a[1])).map((p) => 20 - procState(p).nice));

/** setpriority: every process named; as Linux, the result is the last one's. */
export const setpriority: Handler = (t, a) => {
  const nice = Math.min(19, Math.max(-20, int(a[2])));
  let error: unknown;
  for (const p of prioTargets(t, int(a[0]), int(a[1]))) {
    try {
      mayAlter(t, p);
      setNice(t, p, nice);
      error = undefined;
    } catch (e) {
      error = e;
    }
  }
  if (error) throw error;
  return 0;
};

/** Set `target`'s nice value on behalf of `t`, and on the host for each of its threads' stubs. */
function setNice(t: Task, target: Task, nice: number): void {
  const s = procState(target);
  // Lowering it takes CAP_SYS_NICE (root in the sandbox) or RLIMIT_NICE's allowance.
  const floor = 20 - Number(t.group.rlimits.get(13)?.[0] ?? 0n);
  if (nice < s.nice && t.creds.euid !== 0 && nice < floor) fail("EACCES");
  s.nice = nice;
  for (const thread of target.group.tasks) {
    try {
      os.setPriority(thread.ctx.hostTid, Math.max(0, nice));
    } catch {
      // The stub is gone (the thread is exiting): nothing to apply.
    }
  }
}

const MEMBARRIER_CMD_GLOBAL = 1;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED = 16;

/**
 * membarrier: every other thread passes a memory barrier before it returns. The threads are
 * host threads of the stubs, so the host's global barrier (which waits until every CPU has
 * switched) orders them; a process whose caller is its only thread has nothing to order
 * (the caller is stopped in the kernel). The rules are Linux's: register before a private
 * expedited barrier.
 */
export const membarrier: Handler = (t, a) => {
  const cmd = int(a[0]);
  if (int(a[1]) !== 0) fail("EINVAL");
  const s = procState(t);
  switch (cmd) {
    case 0: // MEMBARRIER_CMD_QUERY
      return (
        MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
      );
    case MEMBARRIER_CMD_GLOBAL:
      hostBarrier(t.pidns.size > 1 || t.group.tasks.size > 1);
      return 0;
    case MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED:
      s.membarrier |= MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED;
      return 0;
    case MEMBARRIER_CMD_PRIVATE_EXPEDITED:
      if (!(s.membarrier & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)) fail("EPERM");
      hostBarrier(t.group.tasks.size > 1);
      return 0;
    default:
      return fail("EINVAL");
  }
};

/** Order the other threads' memory through the host, when there are any to order. */
function hostBarrier(needed: boolean): void {
  if (needed && !membarrierGlobal()) fail("EINVAL", "the host refused membarrier");
}

const IOPRIO_WHO_PROCESS = 1;
const IOPRIO_CLASS_RT = 1;
const IOPRIO_CLASS_BE = 2;
const IOPRIO_CLASS_IDLE = 3;

const ioprioTargets = (t: Task, which: number, who: number): Task[] =>
  named(t, which, IOPRIO_WHO_PROCESS, who);

/** ioprio_get: what ioprio_set recorded (0, IOPRIO_CLASS_NONE, until then); of several, the lowest value. */
export const ioprioGet: Handler = (t, a) =>
  Math.min(...ioprioTargets(t, int(a[0]), int(a[1])).map((p) => procState(p).ioprio));

/** ioprio_set: recorded; the sandbox's file I/O is the host's, in moat's own I/O class. */
export const ioprioSet: Handler = (t, a) => {
  const named = ioprioTargets(t, int(a[0]), int(a[1]));
  const v = int(a[2]);
  const cls = v >> 13;
  const data = v & 0x1fff;
  if (cls === IOPRIO_CLASS_RT || cls === IOPRIO_CLASS_BE) {
    if (data >= 8) fail("EINVAL");
    if (cls === IOPRIO_CLASS_RT && t.creds.euid !== 0) fail("EPERM");
  } else if (cls !== IOPRIO_CLASS_IDLE && cls !== 0) fail("EINVAL");
  for (const p of named) {
    mayAlter(t, p);
    procState(p).ioprio = v;
  }
  return 0;
};
