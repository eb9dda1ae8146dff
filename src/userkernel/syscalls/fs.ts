// Descriptor I/O that needs no VFS: read/write and friends on whatever descriptions the fd
// table holds (today the sandbox's stdio streams), close, dup, fcntl, ioctl, fstat.
import { fail } from "../errno.js";
import type { FileDescription, FileStat } from "../kernel/fdtable.js";
import type { Task } from "../kernel/task.js";
import { addr, type Handler, int, size, uint } from "./types.js";

/** The host caps one read or write at this (MAX_RW_COUNT). */
const MAX_RW = 0x7ffff000;
const IOV_MAX = 1024;

async function readInto(t: Task, fd: number, buf: number, len: number): Promise<number> {
  const d = t.fds.get(fd);
  if (!d.read) fail("EBADF");
  if (len === 0) return 0;
  // Check the destination before consuming input, as the host does for a bad buffer.
  t.mm.spans(buf, len, "write", () => {});
  const tmp = Buffer.allocUnsafe(Math.min(len, 65536));
  const n = await d.read(tmp);
  if (n > 0) t.mm.write(buf, tmp.subarray(0, n));
  return n;
}

export const read: Handler = (t, a) =>
  readInto(t, int(a[0]), addr(a[1]), Math.min(size(a[2], "EFAULT"), MAX_RW));

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
        wrote = await d.write(t.mm.read(base + done, n));
      } catch (e) {
        // Bytes already written count; the error shows on the next call, as on Linux.
        if (total > 0) return total;
        throw e;
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
    const got = await readInto(t, fd, b, n);
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

const O_CLOEXEC = 0o2000000;

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
const FD_CLOEXEC = 1;
/** The F_SETFL flags Linux lets a program change (O_APPEND, O_ASYNC, O_DIRECT, O_NOATIME, O_NONBLOCK). */
const SETFL_MASK = 0o2000 | 0o20000 | 0o40000 | 0o1000000 | 0o4000;

export const fcntl: Handler = (t, a) => {
  const [fd, cmd] = [int(a[0]), int(a[1])];
  const d = t.fds.get(fd);
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
    default:
      return fail("EINVAL", `fcntl command ${cmd} not supported`);
  }
};

export const ioctl: Handler = (t, a) => {
  const d = t.fds.get(int(a[0]));
  if (!d.ioctl) fail("ENOTTY");
  return d.ioctl(uint(a[1]), a[2] ?? 0n);
};

/** struct stat for x86-64 (144 bytes). */
function encodeStat(s: FileStat): Buffer {
  const b = Buffer.alloc(144);
  b.writeBigUInt64LE(BigInt(s.dev), 0);
  b.writeBigUInt64LE(BigInt(s.ino), 8);
  b.writeBigUInt64LE(BigInt(s.nlink), 16);
  b.writeUInt32LE(s.mode, 24);
  b.writeUInt32LE(s.uid, 28);
  b.writeUInt32LE(s.gid, 32);
  b.writeBigUInt64LE(BigInt(s.rdev), 40);
  b.writeBigInt64LE(BigInt(s.size), 48);
  b.writeBigInt64LE(BigInt(s.blksize), 56);
  b.writeBigInt64LE(BigInt(Math.ceil(s.size / 512)), 64);
  return b;
}

export const fstat: Handler = (t, a) => {
  const st = t.fds.get(int(a[0])).stat();
  t.mm.write(addr(a[1]), encodeStat(st));
  return 0;
};

const AT_EMPTY_PATH = 0x1000;

export const newfstatat: Handler = (t, a) => {
  const [dirfd, path, buf, flags] = [int(a[0]), addr(a[1]), addr(a[2]), int(a[3])];
  const name = t.mm.readCString(path);
  if (name === "" && flags & AT_EMPTY_PATH) {
    t.mm.write(buf, encodeStat(t.fds.get(dirfd).stat()));
    return 0;
  }
  return fail("ENOSYS", "path lookup needs the VFS");
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
