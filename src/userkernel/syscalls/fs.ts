// Descriptor I/O: read/write and friends on whatever descriptions the fd table holds (host
// stdio streams, VFS files, pipes), close, dup, fcntl, ioctl, fstat, pipe, sendfile.
import { fail, KernelError } from "../errno.js";
import { readWaiting, writeWaiting } from "../kernel/blocking-io.js";
import type { FileDescription } from "../kernel/fdtable.js";
import { SI_USER, senderInfo, sendSignal } from "../kernel/signals.js";
import type { Task } from "../kernel/task.js";
import { O_CLOEXEC, O_NONBLOCK, O_PATH } from "../vfs/flags.js";
import { encodeStat, PipeReader, RegularFile, statOf } from "../vfs/index.js";
import { makePipe, pipeOf } from "../vfs/pipe.js";
import { S_IFBLK, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG } from "../vfs/stat.js";
import { F_GETLK, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_SETLK, F_SETLKW, fcntlLock } from "./locks.js";
import { F_ADD_SEALS, F_GET_SEALS, fcntlSeals } from "./memfd.js";
import { addr, type Handler, int, size, uint } from "./types.js";

/** The host caps one read or write at this (MAX_RW_COUNT). */
const MAX_RW = 0x7ffff000;
const IOV_MAX = 1024;

/** `wait` false: a later piece of readv, which takes what is there and never waits. */
async function readInto(t: Task, fd: number, buf: number, len: number, wait = true): Promise<number> {
  const d = t.fds.get(fd);
  if (!d.read) fail("EBADF");
  if (len === 0) return 0;
  // Check the destination before consuming input, as the host does for a bad buffer.
  t.mm.spans(buf, len, "write", () => {});
  const tmp = Buffer.allocUnsafe(Math.min(len, 65536));
  let n: number;
  if (wait) n = await readWaiting(t, d, tmp);
  else {
    try {
      n = await d.read(tmp);
    } catch (e) {
      if (e instanceof KernelError && e.code === "EAGAIN") return 0;
      throw e;
    }
  }
  if (n > 0) t.mm.write(buf, tmp.subarray(0, n));
  return n;
}

export const read: Handler = (t, a) =>
  readInto(t, int(a[0]), addr(a[1]), Math.min(size(a[2], "EFAULT"), MAX_RW));

const SIGPIPE = 13;

/**
 * A write to a pipe nobody reads raises SIGPIPE (thread-directed, as Linux sends it), whose
 * default action ends the program; a handler runs on the way back; the write fails with EPIPE.
 */
function brokenPipe(t: Task, e: unknown): unknown {
  if (!(e instanceof KernelError) || e.code !== "EPIPE") return e;
  sendSignal({ task: t }, SIGPIPE, senderInfo(t, SIGPIPE, SI_USER));
  return e;
}

/** Copy out of the program in slices, so a huge write never means a huge kernel buffer. */
const WRITE_SLICE = 1 << 20;

async function writeFrom(t: Task, d: FileDescription, pieces: Array<[number, number]>): Promise<number> {
  if (!d.write) fail("EBADF");
  let total = 0;
  for (const [base, len] of pieces) {
    for (let done = 0; done < len; ) {
      const n = Math.min(len - done, WRITE_SLICE);
      let wrote: number;
      try {
        wrote = await writeWaiting(t, d, t.mm.read(base + done, n));
      } catch (e) {
        // Bytes already written count; the error shows on the next call, as on Linux.
        if (total > 0) return total;
        throw brokenPipe(t, e);
      }
      total += wrote;
      done += wrote;
      if (wrote < n) return total;
    }
  }
  return total;
}

export const write: Handler = (t, a) => {
  const d = t.fds.get(int(a[0]));
  if (!d.write) fail("EBADF");
  const len = Math.min(size(a[2], "EFAULT"), MAX_RW);
  if (len === 0) return 0;
  // Check the whole buffer before writing any of it.
  t.mm.spans(addr(a[1]), len, "read", () => {});
  return writeFrom(t, d, [[addr(a[1]), len]]);
};

function iovecs(t: Task, iov: number, count: number): Array<[number, number]> {
  if (count < 0 || count > IOV_MAX) fail("EINVAL");
  const raw = t.mm.read(iov, count * 16);
  const out: Array<[number, number]> = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const base = addr(raw.readBigUInt64LE(i * 16));
    const len = raw.readBigUInt64LE(i * 16 + 8);
    if (len > BigInt(MAX_RW)) fail("EINVAL");
    total += Number(len);
    if (total > MAX_RW) fail("EINVAL");
    out.push([base, Number(len)]);
  }
  return out;
}

export const writev: Handler = (t, a) => {
  const d = t.fds.get(int(a[0]));
  if (!d.write) fail("EBADF");
  const pieces = iovecs(t, addr(a[1]), int(a[2]));
  for (const [b, n] of pieces) t.mm.spans(b, n, "read", () => {});
  return writeFrom(t, d, pieces);
};

export const readv: Handler = async (t, a) => {
  const fd = int(a[0]);
  let total = 0;
  for (const [b, n] of iovecs(t, addr(a[1]), int(a[2]))) {
    if (n === 0) continue;
    const got = await readInto(t, fd, b, n, total === 0);
    total += got;
    if (got < n) break;
  }
  return total;
};

export const close: Handler = (t, a) => {
  t.fds.close(int(a[0]));
  return 0;
};

export const dup: Handler = (t, a) => t.fds.install(t.fds.get(int(a[0])));

export const dup2: Handler = (t, a) => {
  const [oldfd, newfd] = [int(a[0]), int(a[1])];
  const d = t.fds.get(oldfd);
  if (oldfd !== newfd) t.fds.installAt(newfd, d);
  return newfd;
};

export const dup3: Handler = (t, a) => {
  const [oldfd, newfd, flags] = [int(a[0]), int(a[1]), int(a[2])];
  if (flags & ~O_CLOEXEC || oldfd === newfd) fail("EINVAL");
  t.fds.installAt(newfd, t.fds.get(oldfd), (flags & O_CLOEXEC) !== 0);
  return newfd;
};

const F_DUPFD = 0;
const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const F_DUPFD_CLOEXEC = 1030;
const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
const FD_CLOEXEC = 1;
const F_NOTIFY = 1026;
const DN_MULTISHOT = 0x8000_0000n;
/** The F_SETFL flags Linux lets a program change (O_APPEND, O_ASYNC, O_DIRECT, O_NOATIME, O_NONBLOCK). */
const SETFL_MASK = 0o2000 | 0o20000 | 0o40000 | 0o1000000 | 0o4000;

export const fcntl: Handler = (t, a) => {
  const [fd, cmd] = [int(a[0]), int(a[1])];
  const d = t.fds.get(fd);
  // An O_PATH descriptor answers only these (Linux's check_fcntl_cmd); anything else is EBADF.
  if (d.flags & O_PATH && ![F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL].includes(cmd)) fail("EBADF");
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      const from = int(a[2]);
      if (from < 0) fail("EINVAL");
      return t.fds.install(d, cmd === F_DUPFD_CLOEXEC, from);
    }
    case F_GETFD:
      return t.fds.getCloexec(fd) ? FD_CLOEXEC : 0;
    case F_SETFD:
      t.fds.setCloexec(fd, (int(a[2]) & FD_CLOEXEC) !== 0);
      return 0;
    case F_GETFL:
      return d.flags;
    case F_SETFL:
      d.flags = (d.flags & ~SETFL_MASK) | (int(a[2]) & SETFL_MASK);
      return 0;
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
      return fcntlLock(t, d, cmd, a[2] ?? 0n);
    case F_NOTIFY: {
      // dnotify: a call that asks for no event only drops the (never made) registration,
      // on any file, before Linux looks at what the file is.
      if ((BigInt.asUintN(32, a[2] ?? 0n) & ~DN_MULTISHOT) === 0n) return 0;
      if ((statOf(d).mode & S_IFMT) !== S_IFDIR) fail("ENOTDIR");
      return fail(
        "EINVAL",
        "dnotify events are not delivered by the userkernel (use inotify once it is there)",
      );
    }
    case F_ADD_SEALS:
    case F_GET_SEALS:
      return fcntlSeals(t, d, cmd, a[2] ?? 0n);
    case F_GETPIPE_SZ:
    case F_SETPIPE_SZ: {
      const pipe = pipeOf(d);
      if (pipe === undefined) return fail("EBADF", "not a pipe");
      if (cmd === F_GETPIPE_SZ) return pipe.capacity;
      return pipe.resize(uint(a[2]));
    }
    default:
      return fail("EINVAL", `fcntl command ${cmd} not supported`);
  }
};

const FIONREAD = 0x541b;
const FIONBIO = 0x5421;
const FIONCLEX = 0x5450;
const FIOCLEX = 0x5451;

export const ioctl: Handler = (t, a) => {
  const fd = int(a[0]);
  const d = t.fds.get(fd);
  const req = uint(a[1]);
  // The requests every kind of file answers (Linux's do_vfs_ioctl), before the file's own.
  switch (req) {
    case FIOCLEX:
    case FIONCLEX:
      t.fds.setCloexec(fd, req === FIOCLEX);
      return 0;
    case FIONBIO: {
      const on = t.mm.readU32(addr(a[2])) !== 0;
      d.flags = on ? d.flags | O_NONBLOCK : d.flags & ~O_NONBLOCK;
      return 0;
    }
  }
  if (req === FIONREAD && (d instanceof PipeReader || d instanceof RegularFile)) {
    const n = d instanceof PipeReader ? d.pipe.size : Math.max(0, d.inode.size() - d.pos);
    t.mm.writeU32(addr(a[2]), Math.min(n, 0x7fffffff));
    return 0;
  }
  if (!d.ioctl) fail("ENOTTY");
  return d.ioctl(req, a[2] ?? 0n);
};

export const fstat: Handler = (t, a) => {
  t.mm.write(addr(a[1]), encodeStat(statOf(t.fds.get(int(a[0])))));
  return 0;
};

export const lseek: Handler = (t, a) => {
  const d = t.fds.get(int(a[0]));
  if (!d.seek) fail("ESPIPE");
  return d.seek(Number(BigInt.asIntN(64, a[1] ?? 0n)), int(a[2]));
};

function offsetArg(v: bigint | undefined): number {
  const off = BigInt.asIntN(64, v ?? 0n);
  if (off < 0n) fail("EINVAL");
  return Number(off);
}

export const pread64: Handler = async (t, a) => {
  const d = t.fds.get(int(a[0]));
  if (!d.pread) fail(d.read ? "ESPIPE" : "EBADF");
  const len = Math.min(size(a[2], "EFAULT"), MAX_RW);
  const off = offsetArg(a[3]);
  if (len === 0) return 0;
  const buf = addr(a[1]);
  t.mm.spans(buf, len, "write", () => {});
  const tmp = Buffer.allocUnsafe(Math.min(len, 1 << 20));
  const n = await d.pread(tmp, off);
  if (n > 0) t.mm.write(buf, tmp.subarray(0, n));
  return n;
};

export const pwrite64: Handler = async (t, a) => {
  const d = t.fds.get(int(a[0]));
  if (!d.pwrite) fail(d.write ? "ESPIPE" : "EBADF");
  const len = Math.min(size(a[2], "EFAULT"), MAX_RW);
  const off = offsetArg(a[3]);
  if (len === 0) return 0;
  return d.pwrite(t.mm.read(addr(a[1]), len), off);
};

/** preadv/pwritev: x86-64 passes the whole offset in pos_l (pos_h is for 32-bit ABIs). */
export const preadv: Handler = async (t, a) => {
  const d = t.fds.get(int(a[0]));
  if (!d.pread) fail(d.read ? "ESPIPE" : "EBADF");
  const pieces = iovecs(t, addr(a[1]), int(a[2]));
  let off = offsetArg(a[3]);
  let total = 0;
  for (const [base, len] of pieces) {
    if (len === 0) continue;
    t.mm.spans(base, len, "write", () => {});
    const tmp = Buffer.allocUnsafe(Math.min(len, 1 << 20));
    const n = await d.pread(tmp, off);
    if (n > 0) t.mm.write(base, tmp.subarray(0, n));
    total += n;
    off += n;
    if (n < len) break;
  }
  return total;
};

export const pwritev: Handler = async (t, a) => {
  const d = t.fds.get(int(a[0]));
  if (!d.pwrite) fail(d.write ? "ESPIPE" : "EBADF");
  const pieces = iovecs(t, addr(a[1]), int(a[2]));
  let off = offsetArg(a[3]);
  let total = 0;
  for (const [base, len] of pieces) {
    if (len === 0) continue;
    const n = await d.pwrite(t.mm.read(base, len), off);
    total += n;
    off += n;
    if (n < len) break;
  }
  return total;
};

const SENDFILE_CHUNK = 1 << 20;

/**
 * sendfile: one read (at *offset if given, leaving the file position alone) and one write
 * per call; a short count is allowed and callers loop.
 */
export const sendfile: Handler = async (t, a) => {
  const out = t.fds.get(int(a[0]));
  const src = t.fds.get(int(a[1]));
  const offPtr = addr(a[2]);
  const count = Math.min(size(a[3], "EINVAL"), MAX_RW, SENDFILE_CHUNK);
  if (!out.write || !src.read) fail("EBADF");
  if (count === 0) return 0;
  const tmp = Buffer.allocUnsafe(count);
  let n: number;
  let off = 0;
  if (offPtr !== 0) {
    if (!src.pread) fail("ESPIPE");
    off = Number(BigInt.asIntN(64, t.mm.readU64(offPtr)));
    if (off < 0) fail("EINVAL");
    n = await src.pread(tmp, off);
  } else n = await readWaiting(t, src, tmp);
  if (n === 0) return 0;
  let wrote: number;
  try {
    wrote = await writeWaiting(t, out, tmp.subarray(0, n));
  } catch (e) {
    throw brokenPipe(t, e);
  }
  if (offPtr !== 0) t.mm.writeU64(offPtr, BigInt(off + wrote));
  else if (wrote < n && src.seek) await src.seek(wrote - n, 1 /* SEEK_CUR */);
  return wrote;
};

function pipeInto(t: Task, fdsPtr: number, flags: number): number {
  const O_DIRECT = 0o40000;
  if (flags & ~(O_NONBLOCK | O_CLOEXEC | O_DIRECT)) fail("EINVAL");
  if (flags & O_DIRECT) fail("EINVAL", "packet-mode pipes");
  // Check the destination first, so a bad pointer leaks no descriptors.
  t.mm.spans(fdsPtr, 8, "write", () => {});
  const [r, w] = makePipe(flags);
  const cloexec = (flags & O_CLOEXEC) !== 0;
  const rfd = t.fds.install(r, cloexec);
  let wfd: number;
  try {
    wfd = t.fds.install(w, cloexec);
  } catch (e) {
    t.fds.close(rfd);
    w.release?.();
    throw e;
  }
  const b = Buffer.alloc(8);
  b.writeInt32LE(rfd, 0);
  b.writeInt32LE(wfd, 4);
  t.mm.write(fdsPtr, b);
  return 0;
}

export const pipe: Handler = (t, a) => pipeInto(t, addr(a[0]), 0);
export const pipe2: Handler = (t, a) => pipeInto(t, addr(a[0]), int(a[1]));

export const getdents64: Handler = async (t, a) => {
  const d = t.fds.get(int(a[0]));
  if (!d.getdents64) fail("ENOTDIR");
  const len = Math.min(size(a[2], "EFAULT"), 1 << 20);
  const buf = addr(a[1]);
  t.mm.spans(buf, len, "write", () => {});
  const tmp = Buffer.alloc(len);
  const n = await d.getdents64(tmp);
  if (n > 0) t.mm.write(buf, tmp.subarray(0, n));
  return n;
};

export const fsync: Handler = async (t, a) => {
  const d = t.fds.get(int(a[0]));
  if (!d.sync) fail("EINVAL");
  await d.sync();
  return 0;
};

export const ftruncate: Handler = async (t, a) => {
  const d = t.fds.get(int(a[0]));
  const len = BigInt.asIntN(64, a[1] ?? 0n);
  if (len < 0n || !d.truncate) fail("EINVAL");
  await d.truncate(Number(len));
  return 0;
};

const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_COLLAPSE_RANGE = 0x08;
const FALLOC_FL_ZERO_RANGE = 0x10;
const FALLOC_FL_INSERT_RANGE = 0x20;
const FALLOC_FL_UNSHARE_RANGE = 0x40;
/** The operation bits, of which a call names one at most (FALLOC_FL_MODE_MASK; none: allocate). */
const FALLOC_FL_MODES =
  FALLOC_FL_PUNCH_HOLE |
  FALLOC_FL_COLLAPSE_RANGE |
  FALLOC_FL_ZERO_RANGE |
  FALLOC_FL_INSERT_RANGE |
  FALLOC_FL_UNSHARE_RANGE;
/** vfs_fallocate's checks of the mode alone: KEEP_SIZE plus one operation, as each allows. */
function checkFallocMode(mode: number): void {
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_MODES)) fail("ENOTSUP");
  switch (mode & FALLOC_FL_MODES) {
    case 0:
    case FALLOC_FL_UNSHARE_RANGE:
    case FALLOC_FL_ZERO_RANGE:
      return;
    case FALLOC_FL_PUNCH_HOLE:
      if (!(mode & FALLOC_FL_KEEP_SIZE)) fail("ENOTSUP");
      return;
    case FALLOC_FL_COLLAPSE_RANGE:
    case FALLOC_FL_INSERT_RANGE:
      if (mode & FALLOC_FL_KEEP_SIZE) fail("ENOTSUP");
      return;
    default:
      fail("ENOTSUP");
  }
}

/**
 * fallocate with Linux's checks in vfs_fallocate's order; the files then do what tmpfs does:
 * allocate (mode 0 or KEEP_SIZE) and PUNCH_HOLE; the other operations are EOPNOTSUPP, as there.
 */
export const fallocate: Handler = async (t, a) => {
  const d = t.fds.get(int(a[0]));
  const mode = int(a[1]);
  const offset = BigInt.asIntN(64, a[2] ?? 0n);
  const len = BigInt.asIntN(64, a[3] ?? 0n);
  if (offset < 0n || len <= 0n) fail("EINVAL");
  checkFallocMode(mode);
  if ((d.flags & 3) === 0 /* O_RDONLY */ || d.flags & O_PATH) fail("EBADF");
  const type = statOf(d).mode & S_IFMT;
  if (type === S_IFIFO) fail("ESPIPE");
  if (type === S_IFDIR) fail("EISDIR");
  if (type !== S_IFREG && type !== S_IFBLK) fail("ENODEV");
  if (offset + len > BigInt(Number.MAX_SAFE_INTEGER)) fail("EFBIG");
  if (!(d instanceof RegularFile) || mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) fail("ENOTSUP");
  const punch = (mode & FALLOC_FL_PUNCH_HOLE) !== 0;
  await d.allocate(
    Number(offset),
    Number(len),
    punch ? "punch" : "reserve",
    (mode & FALLOC_FL_KEEP_SIZE) !== 0,
  );
  return 0;
};

const CLOSE_RANGE_UNSHARE = 2;
const CLOSE_RANGE_CLOEXEC = 4;

/** close_range: one process, so CLOSE_RANGE_UNSHARE has nothing to unshare. */
export const closeRange: Handler = (t, a) => {
  const [first, last, flags] = [uint(a[0]), uint(a[1]), uint(a[2])];
  if (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) || first > last) fail("EINVAL");
  for (const fd of t.fds.entries().keys()) {
    if (fd < first || fd > last) continue;
    if (flags & CLOSE_RANGE_CLOEXEC) t.fds.setCloexec(fd, true);
    else t.fds.close(fd);
  }
  return 0;
};

/** posix_fadvise: advice only; the checks are Linux's. */
export const fadvise64: Handler = (t, a) => {
  const d = t.fds.get(int(a[0]));
  if (d instanceof PipeReader || !d.pread) fail("ESPIPE");
  const advice = int(a[3]);
  if (advice < 0 || advice > 5) fail("EINVAL");
  return 0;
};

/** sync/syncfs: the overlay and tmpfs live in memory; there is nothing to write back. */
export const sync: Handler = () => 0;
export const syncfs: Handler = (t, a) => {
  t.fds.get(int(a[0]));
  return 0;
};
