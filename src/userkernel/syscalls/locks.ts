// flock(2) and fcntl's lock commands: the application's side of kernel/locks.ts (struct
// flock in and out, whence and length into a byte range, the access checks Linux makes).
import { fail } from "../errno.js";
import type { FileDescription } from "../kernel/fdtable.js";
import {
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  flockSet,
  type LockType,
  lockKey,
  OFFSET_MAX,
  rangeConflict,
  rangeSet,
} from "../kernel/locks.js";
import type { Task } from "../kernel/task.js";
import { statOf } from "../vfs/index.js";
import { addr, type Handler, int } from "./types.js";

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

export const F_GETLK = 5;
export const F_SETLK = 6;
export const F_SETLKW = 7;
export const F_OFD_GETLK = 36;
export const F_OFD_SETLK = 37;
export const F_OFD_SETLKW = 38;

const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_PATH = 0o10000000;

/** flock(2): LOCK_SH, LOCK_EX or LOCK_UN, with LOCK_NB not to wait. */
export const flock: Handler = async (t, a) => {
  const d = t.fds.get(int(a[0]));
  const op = int(a[1]);
  const kind = op & ~LOCK_NB;
  if (kind !== LOCK_SH && kind !== LOCK_EX && kind !== LOCK_UN) fail("EINVAL");
  if (d.flags & O_PATH) fail("EBADF");
  const type = kind === LOCK_UN ? undefined : kind === LOCK_EX ? F_WRLCK : F_RDLCK;
  await flockSet(t, lockKey(d), d, type, (op & LOCK_NB) !== 0);
  return 0;
};

/** struct flock on x86-64: l_type, l_whence (shorts), l_start, l_len (off_t), l_pid (int). */
const FLOCK_SIZE = 32;

interface FlockArg {
  type: number;
  whence: number;
  start: bigint;
  len: bigint;
  pid: number;
}

function readFlock(t: Task, p: number): FlockArg {
  const b = t.mm.read(p, FLOCK_SIZE);
  return {
    type: b.readInt16LE(0),
    whence: b.readInt16LE(2),
    start: b.readBigInt64LE(8),
    len: b.readBigInt64LE(16),
    pid: b.readInt32LE(24),
  };
}

function writeFlock(t: Task, p: number, f: FlockArg): void {
  const b = Buffer.alloc(FLOCK_SIZE);
  b.writeInt16LE(f.type, 0);
  b.writeInt16LE(f.whence, 2);
  b.writeBigInt64LE(f.start, 8);
  b.writeBigInt64LE(f.len, 16);
  b.writeInt32LE(f.pid, 24);
  t.mm.write(p, b);
}

const SEEK_SET = 0;
const SEEK_CUR = 1;
const SEEK_END = 2;

/** l_whence, l_start and l_len as the inclusive byte range Linux's flock_to_posix_lock makes. */
function rangeOf(d: FileDescription, f: FlockArg): { start: bigint; end: bigint } {
  let base: bigint;
  if (f.whence === SEEK_SET) base = 0n;
  else if (f.whence === SEEK_CUR) base = BigInt((d as { pos?: number }).pos ?? 0);
  else if (f.whence === SEEK_END) base = BigInt(statOf(d).size);
  else return fail("EINVAL");
  let start = base + f.start;
  if (start < 0n) fail("EINVAL");
  let end: bigint;
  if (f.len > 0n) {
    end = start + f.len - 1n;
    if (end > OFFSET_MAX) fail("EOVERFLOW");
  } else if (f.len < 0n) {
    end = start - 1n;
    start += f.len;
    if (start < 0n) fail("EINVAL");
  } else end = OFFSET_MAX;
  if (start > OFFSET_MAX) fail("EOVERFLOW");
  return { start, end };
}

/** A lock's range as struct flock gives it back: from the start, l_len 0 meaning "to the end". */
const lenOf = (r: { start: bigint; end: bigint }) => (r.end === OFFSET_MAX ? 0n : r.end - r.start + 1n);

/** fcntl's F_GETLK, F_SETLK(W) and their F_OFD_ forms on descriptor `d`. */
export async function fcntlLock(t: Task, d: FileDescription, cmd: number, argp: bigint): Promise<number> {
  const p = addr(argp);
  const f = readFlock(t, p);
  const ofd = cmd === F_OFD_GETLK || cmd === F_OFD_SETLK || cmd === F_OFD_SETLKW;
  // OFD locks have no pid: the field must be zero (Linux: EINVAL).
  if (ofd && f.pid !== 0) fail("EINVAL");
  if (d.flags & O_PATH) fail("EBADF");
  const owner: object = ofd ? d : t.fds;
  const key = lockKey(d);
  if (cmd === F_GETLK || cmd === F_OFD_GETLK) {
    if (f.type !== F_RDLCK && f.type !== F_WRLCK) fail("EINVAL");
    const want = { type: f.type as LockType, ...rangeOf(d, f) };
    const c = rangeConflict(key, owner, want);
    if (c === undefined) writeFlock(t, p, { ...f, type: F_UNLCK });
    else writeFlock(t, p, { type: c.type, whence: SEEK_SET, start: c.start, len: lenOf(c), pid: c.pid });
    return 0;
  }
  if (f.type !== F_RDLCK && f.type !== F_WRLCK && f.type !== F_UNLCK) fail("EINVAL");
  const mode = d.flags & O_ACCMODE;
  // A read lock needs a descriptor open for reading, a write lock one open for writing.
  if (f.type === F_RDLCK && mode === O_WRONLY) fail("EBADF");
  if (f.type === F_WRLCK && mode === O_RDONLY) fail("EBADF");
  const range = rangeOf(d, f);
  const wait = cmd === F_SETLKW || cmd === F_OFD_SETLKW;
  await rangeSet(
    t,
    key,
    { owner, ofd, type: f.type as LockType | typeof F_UNLCK, ...range, pid: ofd ? -1 : t.pid },
    wait,
  );
  return 0;
}
