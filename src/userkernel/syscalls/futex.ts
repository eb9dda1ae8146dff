// futex(2), get_robust_list(2): the system call side of kernel/futex.ts. Argument decoding
// and the order of checks follow Linux's do_futex and futex_* functions.
import { Errno, fail } from "../errno.js";
import { FUTEX_BITSET_MATCH_ANY, futexKey, futexTable } from "../kernel/futex.js";
import type { Task } from "../kernel/task.js";
import { addr, type Handler, int, uint } from "./types.js";

const FUTEX_WAIT = 0;
const FUTEX_WAKE = 1;
const FUTEX_FD = 2;
const FUTEX_REQUEUE = 3;
const FUTEX_CMP_REQUEUE = 4;
const FUTEX_WAKE_OP = 5;
const FUTEX_LOCK_PI = 6;
const FUTEX_UNLOCK_PI = 7;
const FUTEX_TRYLOCK_PI = 8;
const FUTEX_WAIT_BITSET = 9;
const FUTEX_WAKE_BITSET = 10;
const FUTEX_WAIT_REQUEUE_PI = 11;
const FUTEX_CMP_REQUEUE_PI = 12;
const FUTEX_LOCK_PI2 = 13;
const FUTEX_PRIVATE_FLAG = 128;
const FUTEX_CLOCK_REALTIME = 256;
const FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);

const NS = 1_000_000_000n;

/**
 * ENOSYS as Linux itself answers it for a malformed call (an unknown op or comparison):
 * returned, not thrown, so that it does not count as a call the userkernel lacks.
 */
const INVALID = -Errno.ENOSYS;

/** A struct timespec at `at`: EFAULT if unreadable, EINVAL if not normalised. */
function readTimespec(t: Task, at: number): bigint {
  const b = t.mm.read(at, 16);
  const sec = b.readBigInt64LE(0);
  const nsec = b.readBigInt64LE(8);
  if (sec < 0n || nsec < 0n || nsec >= NS) fail("EINVAL");
  return sec * NS + nsec;
}

/** The real-time clock in ns since the epoch, as clock_gettime(CLOCK_REALTIME) reports it. */
function realtimeNs(t: Task, mono: bigint): bigint {
  return t.kernel.bootRealtimeNs + (mono - t.kernel.bootHrtimeNs);
}

/**
 * The deadline on the monotonic clock (process.hrtime) for a wait's timeout argument: relative
 * for FUTEX_WAIT, absolute for WAIT_BITSET (on CLOCK_MONOTONIC, or CLOCK_REALTIME with the
 * flag; an absolute real-time deadline is converted once). None: no timeout.
 */
function deadline(t: Task, op: number, realtime: boolean, at: number): bigint | undefined {
  if (at === 0) return undefined;
  const ts = readTimespec(t, at);
  const mono = process.hrtime.bigint();
  if (op === FUTEX_WAIT) return mono + ts;
  return realtime ? mono + (ts - realtimeNs(t, mono)) : ts;
}

async function wait(
  t: Task,
  a: readonly bigint[],
  op: number,
  shared: boolean,
  realtime: boolean,
): Promise<number> {
  const uaddr = addr(a[0]);
  // The timeout is copied in and checked first (in the syscall entry), then the bitset.
  const until = deadline(t, op, realtime, addr(a[3]));
  const bitset = op === FUTEX_WAIT ? FUTEX_BITSET_MATCH_ANY : uint(a[5]);
  if (bitset === 0) fail("EINVAL");
  const key = futexKey(t.mm, uaddr, shared);
  return waitOn(t, key, uaddr, uint(a[2]), bitset, until);
}

/**
 * One futex wait. Interrupted: EINTR, which the signal stage restarts as Linux does: a wait
 * with no timeout as ERESTARTSYS (again, from its arguments, unless a handler without
 * SA_RESTART ran), a timed one as ERESTART_RESTARTBLOCK (only when no handler ran, and
 * through restart_syscall, to the same deadline).
 */
async function waitOn(
  t: Task,
  key: ReturnType<typeof futexKey>,
  uaddr: number,
  val: number,
  bitset: number,
  until: bigint | undefined,
): Promise<number> {
  const r = await futexTable(t).wait(t, key, () => t.mm.readU32(uaddr), val, bitset, until);
  if (r === "woken") return 0;
  if (r === "timeout") fail("ETIMEDOUT");
  if (until !== undefined) t.restartBlock = () => waitOn(t, key, uaddr, val, bitset, until);
  return fail("EINTR");
}

/** FUTEX_OP_* of FUTEX_WAKE_OP's val3. */
const OPS: Array<(old: number, arg: number) => number> = [
  (_o, a) => a, // SET
  (o, a) => o + a, // ADD
  (o, a) => o | a, // OR
  (o, a) => o & ~a, // ANDN
  (o, a) => o ^ a, // XOR
];

/** FUTEX_OP_CMP_*: the old value (a signed int) against cmparg. */
const CMPS: Array<(old: number, arg: number) => boolean> = [
  (o, a) => o === a,
  (o, a) => o !== a,
  (o, a) => o < a,
  (o, a) => o <= a,
  (o, a) => o > a,
  (o, a) => o >= a,
];

const signExtend12 = (v: number): number => (v << 20) >> 20;

/**
 * FUTEX_WAKE_OP: change the word at uaddr2 (op and oparg from val3) and remember its old
 * value, wake up to val waiters of uaddr, then, if the old value compares true against
 * cmparg, up to val2 (the timeout argument as a count) of uaddr2.
 *
 * The read-modify-write is not one atomic instruction against the application's other
 * threads, which keep running while the kernel serves this call (glibc no longer uses
 * WAKE_OP; its users update the word under a lock).
 */
function wakeOp(t: Task, a: readonly bigint[], shared: boolean): number {
  const [uaddr, uaddr2] = [addr(a[0]), addr(a[4])];
  const nWake = int(a[2]);
  const nWake2 = int(a[3]);
  const enc = uint(a[5]);
  const k1 = futexKey(t.mm, uaddr, shared);
  const k2 = futexKey(t.mm, uaddr2, shared);
  const opNr = (enc >>> 28) & 7;
  const cmpNr = (enc >>> 24) & 15;
  let oparg = signExtend12((enc >>> 12) & 0xfff);
  const cmparg = signExtend12(enc & 0xfff);
  // FUTEX_OP_OPARG_SHIFT: the argument is a bit number (Linux masks it to 0..31).
  if (enc & 0x8000_0000) oparg = 1 << (oparg & 31);
  const op = OPS[opNr];
  const cmp = CMPS[cmpNr];
  if (!op) return INVALID;
  // An unknown comparison fails before the word changes, as Linux does.
  if (!cmp) return INVALID;
  const old = t.mm.readU32(uaddr2) | 0;
  t.mm.writeU32(uaddr2, op(old, oparg) >>> 0);
  const table = futexTable(t);
  let woken = table.wake(k1, nWake);
  if (cmp(old, cmparg)) woken += table.wake(k2, nWake2);
  return woken;
}

function requeue(t: Task, a: readonly bigint[], shared: boolean, compare: boolean): number {
  const [uaddr, uaddr2] = [addr(a[0]), addr(a[4])];
  const nWake = int(a[2]);
  // The timeout argument carries the requeue count.
  const nRequeue = int(a[3]);
  if (nWake < 0 || nRequeue < 0) fail("EINVAL");
  const k1 = futexKey(t.mm, uaddr, shared);
  const k2 = futexKey(t.mm, uaddr2, shared);
  if (compare && t.mm.readU32(uaddr) !== uint(a[5])) fail("EAGAIN");
  return futexTable(t).requeue(k1, k2, nWake, nRequeue);
}

export const futex: Handler = (t, a) => {
  const raw = int(a[1]);
  const op = raw & FUTEX_CMD_MASK;
  const shared = (raw & FUTEX_PRIVATE_FLAG) === 0;
  const realtime = (raw & FUTEX_CLOCK_REALTIME) !== 0;
  // Linux accepts the real-time flag only on the calls that take an absolute time (not FUTEX_WAIT).
  if (realtime && op !== FUTEX_WAIT_BITSET && op !== FUTEX_WAIT_REQUEUE_PI && op !== FUTEX_LOCK_PI2)
    return INVALID;
  switch (op) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET:
      return wait(t, a, op, shared, realtime);
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET: {
      const bitset = op === FUTEX_WAKE ? FUTEX_BITSET_MATCH_ANY : uint(a[5]);
      if (bitset === 0) fail("EINVAL");
      return futexTable(t).wake(futexKey(t.mm, addr(a[0]), shared), int(a[2]), bitset);
    }
    case FUTEX_REQUEUE:
      return requeue(t, a, shared, false);
    case FUTEX_CMP_REQUEUE:
      return requeue(t, a, shared, true);
    case FUTEX_WAKE_OP:
      return wakeOp(t, a, shared);
    case FUTEX_LOCK_PI:
    case FUTEX_LOCK_PI2:
    case FUTEX_UNLOCK_PI:
    case FUTEX_TRYLOCK_PI:
    case FUTEX_WAIT_REQUEUE_PI:
    case FUTEX_CMP_REQUEUE_PI:
      // glibc uses them only for PTHREAD_PRIO_INHERIT mutexes, and reports ENOSYS to the caller.
      return fail("ENOSYS", "priority-inheritance futexes");
    case FUTEX_FD:
      // Removed from Linux in 2.6.26.
      return INVALID;
    default:
      return INVALID;
  }
};

/** sizeof(struct robust_list_head) on x86-64. */
const ROBUST_LIST_HEAD_SIZE = 24n;

/** get_robust_list(pid, head_ptr, len_ptr): the caller's or another task's (pid = a tid). */
export const getRobustList: Handler = (t, a) => {
  const tid = int(a[0]);
  const target = tid === 0 ? t : t.pidns.task(tid);
  if (!target) fail("ESRCH");
  t.mm.writeU64(addr(a[2]), ROBUST_LIST_HEAD_SIZE);
  t.mm.writeU64(addr(a[1]), target.robustList.head);
  return 0;
};
