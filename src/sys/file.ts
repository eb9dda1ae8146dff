// Descriptor-based file calls: what the userkernel's gofer needs to open files beneath a
// root without following the image's symlinks out of it (openat2), and what the kernel
// needs to read the descriptors the gofer hands it without ever naming a host path.
// Names are "byte strings": one JS char per byte (latin1), so any name an image holds
// survives the round trip unchanged, UTF-8 or not.
import { check, libc } from "./libc.js";

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_ACCMODE = 3;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DSYNC = 0o10000;
export const O_DIRECT = 0o40000;
export const O_LARGEFILE = 0o100000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_NOATIME = 0o1000000;
export const O_CLOEXEC = 0o2000000;
export const O_SYNC = 0o4010000;
export const O_PATH = 0o10000000;
export const O_TMPFILE = 0o20200000;

// openat2(2) resolve flags.
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

export const AT_FDCWD = -100;
export const AT_EMPTY_PATH = 0x1000;

const SYS_openat2 = 437;
const OPEN_HOW_SIZE = 24;

const syscall_ = libc.func("long syscall(long number, ...)");
const openat_ = libc.func("int openat(int dirfd, const void *path, int flags, uint32_t mode)");
const close_ = libc.func("int close(int fd)");
const fstat_ = libc.func("int fstat(int fd, void *buf)");
const pread_ = libc.func("intptr_t pread64(int fd, void *buf, size_t count, int64_t offset)");
const getdents64_ = libc.func("intptr_t getdents64(int fd, void *buf, size_t count)");
const readlinkat_ = libc.func("intptr_t readlinkat(int dirfd, const void *path, void *buf, size_t size)");
const lseek_ = libc.func("int64_t lseek(int fd, int64_t offset, int whence)");

/** openat2(2). Throws SysError (E2BIG/ENOSYS on kernels older than 5.6). */
// Scratch space reused by the synchronous calls below (they all run on the calling thread
// and finish before returning, so one buffer each is enough; allocating per call costs more
// than the system call on a nested machine).
const how = Buffer.alloc(OPEN_HOW_SIZE);
const statBuf = Buffer.alloc(144);

export function openat2(dirfd: number, path: string, flags: number, resolve: number, mode = 0): number {
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  const r = syscall_(
    SYS_openat2,
    "int",
    dirfd,
    "void *",
    Buffer.from(`${path}\0`, "latin1"),
    "void *",
    how,
    "size_t",
    OPEN_HOW_SIZE,
  ) as number | bigint;
  return check("openat2", r, path);
}

export function openat(dirfd: number, path: string, flags: number, mode = 0): number {
  return check("openat", openat_(dirfd, Buffer.from(`${path}\0`, "latin1"), flags, mode), path);
}

export function close(fd: number): void {
  check("close", close_(fd), String(fd));
}

const NR_CLOSE_RANGE = 436;
const CLOSE_RANGE_CLOEXEC = 4;

/**
 * Mark every descriptor from `first` up close-on-exec (close_range(2), Linux 5.11). A process
 * started by a parent that leaked descriptors to it then passes none of them on to children.
 */
export function cloexecFrom(first: number): void {
  const r = syscall_(NR_CLOSE_RANGE, "uint", first, "uint", 0xffffffff, "uint", CLOSE_RANGE_CLOEXEC) as
    | number
    | bigint;
  check("close_range", Number(r), String(first));
}

/** A host `struct stat`, with 64-bit fields as numbers (exact up to 2^53) and times in ns. */
export interface HostStat {
  dev: number;
  ino: number;
  nlink: number;
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

function ts(buf: Buffer, off: number): bigint {
  return buf.readBigInt64LE(off) * 1_000_000_000n + buf.readBigInt64LE(off + 8);
}

/** Decode the x86-64 `struct stat` layout. */
export function decodeStat(b: Buffer): HostStat {
  return {
    dev: Number(b.readBigUInt64LE(0)),
    ino: Number(b.readBigUInt64LE(8)),
    nlink: Number(b.readBigUInt64LE(16)),
    mode: b.readUInt32LE(24),
    uid: b.readUInt32LE(28),
    gid: b.readUInt32LE(32),
    rdev: Number(b.readBigUInt64LE(40)),
    size: Number(b.readBigInt64LE(48)),
    blksize: Number(b.readBigInt64LE(56)),
    blocks: Number(b.readBigInt64LE(64)),
    atimeNs: ts(b, 72),
    mtimeNs: ts(b, 88),
    ctimeNs: ts(b, 104),
  };
}

export function fstat(fd: number): HostStat {
  check("fstat", fstat_(fd, statBuf), String(fd));
  return decodeStat(statBuf);
}

/** pread(2) into `dst`; returns the bytes read (0 at end of file). */
export function pread(fd: number, dst: Uint8Array, offset: number): number {
  if (dst.length === 0) return 0;
  return check("pread", pread_(fd, dst, dst.length, offset), String(fd));
}

/** One getdents64(2) call into `buf`: returns the bytes of linux_dirent64 records (0 at end). */
export function getdents64(fd: number, buf: Buffer): number {
  return check("getdents64", getdents64_(fd, buf, buf.length), String(fd));
}

export interface HostDirent {
  ino: number;
  type: number;
  name: string;
}

/** Parse linux_dirent64 records (d_ino u64, d_off i64, d_reclen u16, d_type u8, name NUL). */
export function parseDirents(buf: Buffer, len: number): HostDirent[] {
  const out: HostDirent[] = [];
  for (let off = 0; off + 19 <= len; ) {
    const reclen = buf.readUInt16LE(off + 16);
    if (reclen === 0) break;
    const end = buf.indexOf(0, off + 19);
    const name = buf.toString("latin1", off + 19, end < 0 || end > off + reclen ? off + reclen : end);
    out.push({ ino: Number(buf.readBigUInt64LE(off)), type: buf[off + 18]!, name });
    off += reclen;
  }
  return out;
}

/** Every entry of an open directory, from its current position to the end. */
export function readAllDirents(fd: number): HostDirent[] {
  const buf = Buffer.alloc(32768);
  const all: HostDirent[] = [];
  for (;;) {
    const n = getdents64(fd, buf);
    if (n === 0) return all;
    for (const d of parseDirents(buf, n)) all.push(d);
  }
}

/** readlinkat(2); with path "" it reads the symlink an O_PATH|O_NOFOLLOW descriptor refers to. */
export function readlinkat(dirfd: number, path: string): string {
  const buf = Buffer.alloc(4096);
  const n = check(
    "readlinkat",
    readlinkat_(dirfd, Buffer.from(`${path}\0`, "latin1"), buf, buf.length),
    path || String(dirfd),
  );
  return buf.toString("latin1", 0, n);
}

export const SEEK_SET = 0;
export function lseek(fd: number, offset: number, whence = SEEK_SET): number {
  return check("lseek", lseek_(fd, offset, whence), String(fd));
}
