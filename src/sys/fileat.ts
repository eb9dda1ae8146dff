// Descriptor-relative calls that change files: what the userkernel's gofer needs to serve a
// read-write bind mount (create, remove, rename, change attributes) beneath a directory
// descriptor it opened with openat2, and what the kernel needs to write the descriptors the
// gofer hands it. Every name here is one component relative to a directory descriptor, or
// "" with AT_EMPTY_PATH: no call takes a path the host resolves from its own root.
import { check, libc } from "./libc.js";

export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;
export const UTIME_OMIT = (1 << 30) - 2;

const SYS_renameat2 = 316;

const syscall_ = libc.func("long syscall(long number, ...)");
const pwrite_ = libc.func("intptr_t pwrite64(int fd, const void *buf, size_t count, int64_t offset)");
const ftruncate_ = libc.func("int ftruncate(int fd, int64_t length)");
const mkdirat_ = libc.func("int mkdirat(int dirfd, const void *path, uint32_t mode)");
const unlinkat_ = libc.func("int unlinkat(int dirfd, const void *path, int flags)");
const symlinkat_ = libc.func("int symlinkat(const void *target, int dirfd, const void *path)");
const linkat_ = libc.func(
  "int linkat(int olddirfd, const void *oldpath, int newdirfd, const void *newpath, int flags)",
);
const fchmodat_ = libc.func("int fchmodat(int dirfd, const void *path, uint32_t mode, int flags)");
const fchownat_ = libc.func(
  "int fchownat(int dirfd, const void *path, uint32_t uid, uint32_t gid, int flags)",
);
const utimensat_ = libc.func("int utimensat(int dirfd, const void *path, const void *times, int flags)");

function name(s: string): Buffer {
  return Buffer.from(`${s}\0`, "latin1");
}

/** pwrite(2) from `src`; returns the bytes written. */
export function pwrite(fd: number, src: Uint8Array, offset: number): number {
  if (src.length === 0) return 0;
  return check("pwrite", pwrite_(fd, src, src.length, offset), String(fd));
}

export function ftruncate(fd: number, length: number): void {
  check("ftruncate", ftruncate_(fd, length), String(fd));
}

export function mkdirat(dirfd: number, path: string, mode: number): void {
  check("mkdirat", mkdirat_(dirfd, name(path), mode), path);
}

export function unlinkat(dirfd: number, path: string, flags = 0): void {
  check("unlinkat", unlinkat_(dirfd, name(path), flags), path);
}

export function symlinkat(target: string, dirfd: number, path: string): void {
  check("symlinkat", symlinkat_(name(target), dirfd, name(path)), path);
}

export function linkat(
  oldDirfd: number,
  oldPath: string,
  newDirfd: number,
  newPath: string,
  flags = 0,
): void {
  check("linkat", linkat_(oldDirfd, name(oldPath), newDirfd, name(newPath), flags), newPath);
}

/** renameat2(2) (flags: RENAME_NOREPLACE 1, RENAME_EXCHANGE 2). */
export function renameat2(
  oldDirfd: number,
  oldPath: string,
  newDirfd: number,
  newPath: string,
  flags = 0,
): void {
  const r = syscall_(
    SYS_renameat2,
    "int",
    oldDirfd,
    "void *",
    name(oldPath),
    "int",
    newDirfd,
    "void *",
    name(newPath),
    "uint",
    flags,
  ) as number | bigint;
  check("renameat2", r, newPath);
}

/** fchmodat(dirfd, path, mode, 0); with "/proc/self/fd/N" it changes the inode an O_PATH descriptor holds. */
export function fchmodat(dirfd: number, path: string, mode: number): void {
  check("fchmodat", fchmodat_(dirfd, name(path), mode, 0), path);
}

/** fchownat(fd, "", uid, gid, AT_EMPTY_PATH): works on O_PATH descriptors, symlinks included. */
export function fchownEmpty(fd: number, uid: number, gid: number): void {
  check("fchownat", fchownat_(fd, name(""), uid >>> 0, gid >>> 0, AT_EMPTY_PATH), String(fd));
}

function timespecs(atimeNs: bigint | null, mtimeNs: bigint | null): Buffer {
  const b = Buffer.alloc(32);
  const put = (off: number, ns: bigint | null) => {
    if (ns === null) {
      b.writeBigInt64LE(0n, off);
      b.writeBigInt64LE(BigInt(UTIME_OMIT), off + 8);
    } else {
      b.writeBigInt64LE(ns / 1_000_000_000n, off);
      b.writeBigInt64LE(ns % 1_000_000_000n, off + 8);
    }
  };
  put(0, atimeNs);
  put(16, mtimeNs);
  return b;
}

/** utimensat(2) (null leaves a time unchanged); with "/proc/self/fd/N" it sets an O_PATH descriptor's inode. */
export function utimensat(
  dirfd: number,
  path: string,
  atimeNs: bigint | null,
  mtimeNs: bigint | null,
  flags = 0,
): void {
  check("utimensat", utimensat_(dirfd, name(path), timespecs(atimeNs, mtimeNs), flags), path);
}
