// Advisory file locks, the three kinds Linux keeps per inode (fs/locks.c is the reference for
// every rule below):
//
// - flock(2): whole-file, owned by the open file description. dup and fork share it; it goes
//   when the description's last descriptor closes, or with LOCK_UN. Converting a lock drops
//   the old one first (it is not atomic, as on Linux), so a waiter may slip in between.
// - POSIX record locks (fcntl F_SETLK/F_SETLKW/F_GETLK, lockf): byte ranges owned by the fd
//   table (Linux's fl_owner is current->files): a fork's child does not inherit them, an
//   execve keeps them, and closing any descriptor of the inode drops all of the owner's locks
//   on it. A new lock replaces the owner's own locks in its range (splitting or merging them).
// - Open-file-description locks (F_OFD_*): byte ranges like POSIX locks, owned by the
//   description like flock.
// POSIX and OFD locks conflict with each other; flock locks only with flock locks. Nothing
// here is enforced on I/O (advisory only, as Linux without mandatory locking).
//
// A lock that must wait blocks the task on the inode's wait queue (wait.ts) and looks again
// after every change to the inode's locks; a signal ends the wait with EINTR, which the
// delivery stage restarts under SA_RESTART (syscall-restart.ts). A POSIX waiter whose wait
// would close a cycle of POSIX owners waiting on each other gets EDEADLK instead.
import { fail } from "../errno.js";
import { ALL_EVENTS, type Blockable, block, WaitQueue } from "./wait.js";

export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
export type LockType = typeof F_RDLCK | typeof F_WRLCK;

/** The last byte a range can cover (OFFSET_MAX): a lock "to the end of the file". */
export const OFFSET_MAX = 0x7fff_ffff_ffff_ffffn;

/** A byte-range lock: POSIX (owner an fd table, with the locker's pid) or OFD (owner a description). */
export interface RangeLock {
  readonly owner: object;
  readonly ofd: boolean;
  readonly type: LockType;
  readonly start: bigint;
  /** Inclusive; OFFSET_MAX for "to the end". */
  readonly end: bigint;
  /** The thread group id that set a POSIX lock, as F_GETLK reports it (-1 for OFD locks). */
  readonly pid: number;
}

interface FlockLock {
  readonly type: LockType;
}

/** The locks of one inode. */
class InodeLocks {
  readonly flocks = new Map<object, FlockLock>();
  ranges: RangeLock[] = [];
  /** Notified on every release or change, so that waiters look again. */
  readonly queue = new WaitQueue();
}

/** Locks by inode: the VFS's inode object (one per file), or the description itself. */
const byInode = new WeakMap<object, InodeLocks>();
/** The owners whose descriptors hold POSIX or OFD locks on each inode (for the close path). */
const inodesOfOwner = new WeakMap<object, Set<InodeLocks>>();
/** POSIX owners waiting in F_SETLKW, and the owner of the lock each waits for (deadlock detection). */
const waitingFor = new Map<object, object>();

/** What identifies a description's file: its inode if it has one (VFS files), else itself. */
export function lockKey(d: object): object {
  const inode = (d as { inode?: unknown }).inode;
  return typeof inode === "object" && inode !== null ? inode : d;
}

function locksOf(key: object): InodeLocks {
  let l = byInode.get(key);
  if (l === undefined) {
    l = new InodeLocks();
    byInode.set(key, l);
  }
  return l;
}

function noteOwner(owner: object, l: InodeLocks): void {
  let s = inodesOfOwner.get(owner);
  if (s === undefined) {
    s = new Set();
    inodesOfOwner.set(owner, s);
  }
  s.add(l);
}

// ---- flock ----------------------------------------------------------------------------

function flockConflict(l: InodeLocks, desc: object, type: LockType): boolean {
  for (const [other, f] of l.flocks)
    if (other !== desc && (type === F_WRLCK || f.type === F_WRLCK)) return true;
  return false;
}

/**
 * flock(2) on the description `desc` of file `key`: take a shared or exclusive lock (waiting
 * unless `nonblock`: EWOULDBLOCK), or drop it with `undefined`.
 */
export async function flockSet(
  t: Blockable,
  key: object,
  desc: object,
  type: LockType | undefined,
  nonblock: boolean,
): Promise<void> {
  const l = locksOf(key);
  const held = l.flocks.get(desc);
  if (held !== undefined && held.type === type) return;
  if (held !== undefined) {
    l.flocks.delete(desc);
    l.queue.notify();
  }
  if (type === undefined) return;
  for (;;) {
    if (!flockConflict(l, desc, type)) {
      l.flocks.set(desc, { type });
      noteOwner(desc, l);
      return;
    }
    if (nonblock) fail("EAGAIN");
    if ((await block(t, [[l.queue, ALL_EVENTS]], undefined, "flock")) === "interrupted") fail("EINTR");
  }
}

// ---- byte ranges (POSIX and OFD) -------------------------------------------------------

const overlaps = (a: { start: bigint; end: bigint }, b: { start: bigint; end: bigint }) =>
  a.start <= b.end && b.start <= a.end;

/** The first lock of another owner that keeps `want` from being taken (F_GETLK's answer). */
export function rangeConflict(
  key: object,
  owner: object,
  want: { type: LockType; start: bigint; end: bigint },
): RangeLock | undefined {
  const l = byInode.get(key);
  if (l === undefined) return undefined;
  return l.ranges.find(
    (r) => r.owner !== owner && overlaps(r, want) && (want.type === F_WRLCK || r.type === F_WRLCK),
  );
}

/**
 * Cut the owner's locks out of [start, end] and put `add` (which covers that range) there, if
 * given; `add` merges with the owner's same-type locks it touches, as Linux's
 * posix_lock_inode does (so F_GETLK reports one range for two adjacent locks). An owner's
 * locks never overlap each other.
 */
function replaceRange(
  l: InodeLocks,
  owner: object,
  range: { start: bigint; end: bigint },
  add?: RangeLock,
): void {
  let { start, end } = range;
  const after = (x: bigint) => (x === OFFSET_MAX ? x : x + 1n);
  const kept: RangeLock[] = [];
  for (const r of l.ranges) {
    if (r.owner !== owner) kept.push(r);
    else if (add !== undefined && r.type === add.type && r.start <= after(end) && start <= after(r.end)) {
      // Same type and touching: absorbed into the new lock.
      if (r.start < start) start = r.start;
      if (r.end > end) end = r.end;
    } else if (!overlaps(r, range)) kept.push(r);
    else {
      // The parts of the old lock outside the range stay.
      if (r.start < range.start) kept.push({ ...r, end: range.start - 1n });
      if (r.end > range.end) kept.push({ ...r, start: range.end + 1n });
    }
  }
  if (add !== undefined) kept.push({ ...add, start, end });
  kept.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  l.ranges = kept;
}

/** Would `me` waiting for a lock of `blocker` close a cycle of waiting POSIX owners? */
function deadlocks(me: object, blocker: object): boolean {
  let o: object | undefined = blocker;
  // Linux gives up after MAX_DEADLK_ITERATIONS (10) steps; so does this.
  for (let i = 0; o !== undefined && i < 10; i++) {
    if (o === me) return true;
    o = waitingFor.get(o);
  }
  return false;
}

/**
 * F_SETLK / F_SETLKW / F_OFD_SETLK / F_OFD_SETLKW: set `lock` (its type F_UNLCK removes the
 * owner's locks in the range). A conflict fails with EAGAIN, or waits with `wait`.
 */
export async function rangeSet(
  t: Blockable,
  key: object,
  lock: Omit<RangeLock, "type"> & { type: LockType | typeof F_UNLCK },
  wait: boolean,
): Promise<void> {
  const l = locksOf(key);
  if (lock.type === F_UNLCK) {
    replaceRange(l, lock.owner, lock);
    l.queue.notify();
    return;
  }
  const want = lock as RangeLock;
  for (;;) {
    const c = rangeConflict(key, want.owner, want);
    if (c === undefined) {
      replaceRange(l, want.owner, want, want);
      noteOwner(want.owner, l);
      // A lock that shrank another of the owner's (write to read) may let readers in.
      l.queue.notify();
      return;
    }
    if (!wait) fail("EAGAIN");
    if (!want.ofd && !c.ofd && deadlocks(want.owner, c.owner)) fail("EDEADLK");
    if (!want.ofd) waitingFor.set(want.owner, c.owner);
    let r: Awaited<ReturnType<typeof block>>;
    try {
      r = await block(t, [[l.queue, ALL_EVENTS]], undefined, "fcntl_lock");
    } finally {
      if (!want.ofd) waitingFor.delete(want.owner);
    }
    if (r === "interrupted") fail("EINTR");
  }
}

// ---- release ---------------------------------------------------------------------------

/** Drop every POSIX lock `owner` (an fd table) holds on file `key`: any close of the file does. */
export function releasePosix(owner: object, key: object): void {
  const l = byInode.get(key);
  if (l === undefined || !l.ranges.some((r) => r.owner === owner)) return;
  l.ranges = l.ranges.filter((r) => r.owner !== owner);
  l.queue.notify();
}

/** The description's last close: its flock and its OFD locks go. */
export function releaseDescription(desc: object): void {
  const ls = inodesOfOwner.get(desc);
  if (ls === undefined) return;
  inodesOfOwner.delete(desc);
  for (const l of ls) {
    const had = l.flocks.delete(desc);
    const before = l.ranges.length;
    l.ranges = l.ranges.filter((r) => r.owner !== desc);
    if (had || l.ranges.length !== before) l.queue.notify();
  }
}

/** The locks on file `key` (tests, /proc/locks). */
export function locksOn(key: object): { flocks: LockType[]; ranges: readonly RangeLock[] } {
  const l = byInode.get(key);
  return { flocks: l ? [...l.flocks.values()].map((f) => f.type) : [], ranges: l?.ranges ?? [] };
}
