// Futexes: the kernel side of every userspace lock, condition variable, barrier, semaphore
// and thread join. A futex is a 32-bit word in application memory; the kernel keeps only the
// tasks that sleep on a word, keyed so that everyone who means the same word meets:
//
// - a private futex (FUTEX_PRIVATE_FLAG, or any futex in private memory) is (address space,
//   address): the threads of one process;
// - a shared futex in a shared mapping is the word's offset in the kernel's one memory file,
//   so two processes that map the same shared page (MAP_SHARED after fork, a shm_open file)
//   meet whatever address each maps it at.
//
// Waiters sleep through the one blocking primitive (wait.ts): each has a wait queue of its
// own, so a wake picks exactly the waiters it may (FIFO, matching bitsets, at most n) and a
// requeue moves them to another word without waking them. Linux's futex_* code (kernel/
// futex/) is the reference for every count and every order of checks below.
import { KernelError } from "../errno.js";
import type { AddressSpace } from "../mm/addrspace.js";
import type { Task } from "./task.js";
import { ALL_EVENTS, type Blockable, type BlockResult, block, WaitQueue } from "./wait.js";

export const FUTEX_BITSET_MATCH_ANY = 0xffffffff;
export const FUTEX_WAITERS = 0x80000000;
export const FUTEX_OWNER_DIED = 0x40000000;
export const FUTEX_TID_MASK = 0x3fffffff;

interface Waiter {
  key: string;
  readonly bitset: number;
  readonly queue: WaitQueue;
  woken: boolean;
}

/** Every address space gets a number for private keys (the object itself cannot be a key part). */
const spaceIds = new WeakMap<AddressSpace, number>();
let nextSpaceId = 0;

function spaceId(mm: AddressSpace): number {
  let id = spaceIds.get(mm);
  if (id === undefined) {
    id = ++nextSpaceId;
    spaceIds.set(mm, id);
  }
  return id;
}

/**
 * The key of the word at `uaddr`. `shared`: the caller did not pass FUTEX_PRIVATE_FLAG;
 * then the word must be mapped (Linux looks the page up: EFAULT), and a word in a shared
 * mapping is named by its memory-file offset. A private futex is never looked up, as on Linux.
 */
export function futexKey(mm: AddressSpace, uaddr: number, shared: boolean): string {
  if (uaddr % 4 !== 0) throw new KernelError("EINVAL", "futex word not 4-byte aligned");
  if (!shared) return `p${spaceId(mm)}:${uaddr}`;
  const v = mm.find(uaddr);
  if (!v) throw new KernelError("EFAULT");
  if (v.shared) return `s${v.off + (uaddr - v.start)}`;
  return `p${spaceId(mm)}:${uaddr}`;
}

/** The waiters of one kernel, by key, each list in arrival order. */
export class FutexTable {
  private readonly buckets = new Map<string, Waiter[]>();

  private enqueue(w: Waiter): void {
    const b = this.buckets.get(w.key);
    if (b) b.push(w);
    else this.buckets.set(w.key, [w]);
  }

  private dequeue(w: Waiter): void {
    const b = this.buckets.get(w.key);
    if (!b) return;
    const i = b.indexOf(w);
    if (i >= 0) b.splice(i, 1);
    if (b.length === 0) this.buckets.delete(w.key);
  }

  /** How many tasks sleep on `key` (tests, debugging). */
  waiters(key: string): number {
    return this.buckets.get(key)?.length ?? 0;
  }

  /**
   * FUTEX_WAIT(_BITSET): sleep on `key` unless the word no longer holds `expected` (EAGAIN).
   * `read` loads the word (EFAULT if it cannot). The check and the enqueue are one synchronous
   * stretch, so a wake between them cannot be lost. Resolves "woken" only if a wake picked
   * this waiter (a wake that raced a timeout or a signal still counts as woken, as on Linux,
   * where a dequeued waiter returns 0).
   */
  wait(
    task: Blockable,
    key: string,
    read: () => number,
    expected: number,
    bitset: number,
    deadlineNs: bigint | undefined,
  ): Promise<BlockResult> {
    if (read() !== expected >>> 0) throw new KernelError("EAGAIN");
    const w: Waiter = { key, bitset, queue: new WaitQueue(), woken: false };
    this.enqueue(w);
    return block(task, [[w.queue, ALL_EVENTS]], deadlineNs, "futex").then((r) => {
      if (w.woken) return "woken";
      this.dequeue(w);
      return r === "woken" ? "interrupted" : r;
    });
  }

  /**
   * FUTEX_WAKE(_BITSET): wake up to `n` waiters of `key` whose bitset meets `bitset`; returns
   * how many. Like Linux, a count of 0 or less still wakes one.
   */
  wake(key: string, n: number, bitset = FUTEX_BITSET_MATCH_ANY): number {
    const b = this.buckets.get(key);
    if (!b) return 0;
    let woken = 0;
    for (const w of [...b]) {
      if ((w.bitset & bitset) === 0) continue;
      this.wakeOne(w);
      if (++woken >= n) break;
    }
    return woken;
  }

  private wakeOne(w: Waiter): void {
    this.dequeue(w);
    w.woken = true;
    w.queue.notify();
  }

  /**
   * FUTEX_REQUEUE / CMP_REQUEUE once the caller checked the word: wake up to `nWake` of
   * `from`, move up to `nRequeue` more to `to` (they keep sleeping, now on the other word).
   * Returns woken + requeued, as Linux does.
   */
  requeue(from: string, to: string, nWake: number, nRequeue: number): number {
    const b = this.buckets.get(from);
    if (!b) return 0;
    let count = 0;
    for (const w of [...b]) {
      if (count - nWake >= nRequeue) break;
      if (++count <= nWake) {
        this.wakeOne(w);
        continue;
      }
      if (from === to) continue;
      this.dequeue(w);
      w.key = to;
      this.enqueue(w);
    }
    return count;
  }
}

/** One futex table per kernel: every task of a kernel shares the KernelInfo object. */
const tables = new WeakMap<object, FutexTable>();

export function futexTable(t: Pick<Task, "kernel">): FutexTable {
  let table = tables.get(t.kernel);
  if (!table) {
    table = new FutexTable();
    tables.set(t.kernel, table);
  }
  return table;
}

/** Wake one waiter of the word at `uaddr` in `mm`, as the kernel's own exit paths do (shared key). */
function wakeWord(t: Task, uaddr: number): void {
  try {
    futexTable(t).wake(futexKey(t.mm, uaddr, true), 1);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
  }
}

/** Read/write a word, or undefined when the memory is gone: exit paths never fail. */
function tryRead(mm: AddressSpace, at: number, bytes: 4 | 8): bigint | undefined {
  try {
    return bytes === 4 ? BigInt(mm.readU32(at)) : mm.readU64(at);
  } catch (e) {
    if (e instanceof KernelError) return undefined;
    throw e;
  }
}

/**
 * clear_child_tid at thread exit (CLONE_CHILD_CLEARTID, set_tid_address): write 0 to the
 * word and wake one waiter on it, which is how pthread_join learns a thread ended. A fault
 * is ignored, as Linux ignores it.
 */
export function clearChildTid(task: Task): void {
  const at = task.clearChildTid;
  if (at === 0) return;
  task.clearChildTid = 0;
  try {
    task.mm.writeU32(at, 0);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    return;
  }
  wakeWord(task, at);
}

/** Linux's ROBUST_LIST_LIMIT: a list longer than this (or circular) is abandoned. */
const ROBUST_LIST_LIMIT = 2048;

/**
 * The robust futex list at thread exit (set_robust_list), walked as Linux's exit_robust_list
 * does: every lock the thread still holds (its tid in the word) gets FUTEX_OWNER_DIED, and
 * one waiter is woken so it can take the lock over; the entry the thread was acquiring or
 * releasing (list_op_pending) is handled last. Bad pointers end the walk silently.
 */
export function exitRobustList(task: Task): void {
  const head = task.robustList.head;
  if (head === 0n) return;
  task.robustList = { head: 0n, len: 0n };
  const mm = task.mm;
  const headAt = Number(head);
  const first = tryRead(mm, headAt, 8);
  const offset = tryRead(mm, headAt + 8, 8);
  const pendingRaw = tryRead(mm, headAt + 16, 8);
  if (first === undefined || offset === undefined || pendingRaw === undefined) return;
  const futexOffset = BigInt.asIntN(64, offset);
  const pending = pendingRaw & ~1n;
  const pendingPi = (pendingRaw & 1n) !== 0n;
  let entry = first & ~1n;
  let pi = (first & 1n) !== 0n;
  for (let limit = ROBUST_LIST_LIMIT; entry !== head; ) {
    const next = tryRead(mm, Number(entry), 8);
    if (entry !== pending) futexDeath(task, entry + futexOffset, pi, false);
    if (next === undefined) return;
    entry = next & ~1n;
    pi = (next & 1n) !== 0n;
    if (--limit === 0) break;
  }
  if (pending !== 0n) futexDeath(task, pending + futexOffset, pendingPi, true);
}

/** Linux's handle_futex_death for one robust word. */
function futexDeath(task: Task, word: bigint, pi: boolean, pendingOp: boolean): void {
  const at = Number(BigInt.asUintN(64, word));
  if (at % 4 !== 0 || !Number.isSafeInteger(at)) return;
  const v = tryRead(task.mm, at, 4);
  if (v === undefined) return;
  const uval = Number(v);
  // The thread died between taking a lock and writing its tid there: someone may be
  // waiting on a word nobody owns, so wake one.
  if (pendingOp && !pi && uval === 0) {
    wakeWord(task, at);
    return;
  }
  if ((uval & FUTEX_TID_MASK) !== task.tid) return;
  const next = ((uval & FUTEX_WAITERS) | FUTEX_OWNER_DIED) >>> 0;
  try {
    task.mm.writeU32(at, next);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    return;
  }
  if (!pi && uval & FUTEX_WAITERS) wakeWord(task, at);
}
