// File attributes as Linux reports them, and their x86-64 ABI encodings, so the syscall
// handlers copy bytes out instead of knowing struct layouts.

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;

import type { HostStat } from "../../sys/file.js";

export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;

/** Everything fstat/statx report, as Linux's struct stat has it. Times are ns since the epoch. */
export type Stat = HostStat;

export const STAT_SIZE = 144;
export const STATX_SIZE = 256;
/** STATX_BASIC_STATS: type, mode, nlink, uid, gid, atime, mtime, ctime, ino, size, blocks. */
export const STATX_BASIC_STATS = 0x7ff;

const NS = 1_000_000_000n;

function writeTimespec(b: Buffer, off: number, ns: bigint): void {
  // Floor division keeps nsec in [0, 1e9) for times before the epoch too.
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) {
    nsec += NS;
    sec -= 1n;
  }
  b.writeBigInt64LE(sec, off);
  b.writeBigInt64LE(nsec, off + 8);
}

/** `struct stat` of x86-64 (144 bytes). */
export function encodeStat(s: Stat): Buffer {
  const b = Buffer.alloc(STAT_SIZE);
  b.writeBigUInt64LE(BigInt(s.dev), 0);
  b.writeBigUInt64LE(BigInt(s.ino), 8);
  b.writeBigUInt64LE(BigInt(s.nlink), 16);
  b.writeUInt32LE(s.mode >>> 0, 24);
  b.writeUInt32LE(s.uid >>> 0, 28);
  b.writeUInt32LE(s.gid >>> 0, 32);
  b.writeBigUInt64LE(BigInt(s.rdev), 40);
  b.writeBigInt64LE(BigInt(s.size), 48);
  b.writeBigInt64LE(BigInt(s.blksize), 56);
  b.writeBigInt64LE(BigInt(s.blocks), 64);
  writeTimespec(b, 72, s.atimeNs);
  writeTimespec(b, 88, s.mtimeNs);
  writeTimespec(b, 104, s.ctimeNs);
  return b;
}

export function major(dev: number): number {
  const d = BigInt(dev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
}

export function minor(dev: number): number {
  const d = BigInt(dev);
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
}

export function makedev(ma: number, mi: number): number {
  const a = BigInt(ma);
  const i = BigInt(mi);
  return Number(((a & 0xfffn) << 8n) | ((a & ~0xfffn) << 32n) | (i & 0xffn) | ((i & ~0xffn) << 12n));
}

function writeStatxTimestamp(b: Buffer, off: number, ns: bigint): void {
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) {
    nsec += NS;
    sec -= 1n;
  }
  b.writeBigInt64LE(sec, off);
  b.writeUInt32LE(Number(nsec), off + 8);
}

/** `struct statx` (256 bytes); reports the basic stats whatever `mask` asked for, as Linux may. */
export function encodeStatx(s: Stat, mntId = 0): Buffer {
  const b = Buffer.alloc(STATX_SIZE);
  b.writeUInt32LE(STATX_BASIC_STATS, 0);
  b.writeUInt32LE(s.blksize, 4);
  b.writeUInt32LE(s.nlink, 16);
  b.writeUInt32LE(s.uid >>> 0, 20);
  b.writeUInt32LE(s.gid >>> 0, 24);
  b.writeUInt16LE(s.mode & 0xffff, 28);
  b.writeBigUInt64LE(BigInt(s.ino), 32);
  b.writeBigUInt64LE(BigInt(s.size), 40);
  b.writeBigUInt64LE(BigInt(s.blocks), 48);
  writeStatxTimestamp(b, 64, s.atimeNs);
  writeStatxTimestamp(b, 96, s.ctimeNs);
  writeStatxTimestamp(b, 112, s.mtimeNs);
  b.writeUInt32LE(major(s.rdev), 128);
  b.writeUInt32LE(minor(s.rdev), 132);
  b.writeUInt32LE(major(s.dev), 136);
  b.writeUInt32LE(minor(s.dev), 140);
  b.writeBigUInt64LE(BigInt(mntId), 144);
  return b;
}

/** d_type of linux_dirent64 for a mode. */
export function dtype(mode: number): number {
  return ((mode & S_IFMT) >>> 12) & 0xf;
}

const realBase = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** The real-time clock in ns (ms-accurate origin, ns-resolution steps). */
export function nowNs(): bigint {
  return realBase + process.hrtime.bigint();
}

/** What statfs/fstatfs report about a file system. */
export interface StatFs {
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  fsid: [number, number];
  namelen: number;
  frsize: number;
  flags: number;
}

export const STATFS_SIZE = 120;

/** `struct statfs` of x86-64 (120 bytes). */
export function encodeStatfs(s: StatFs): Buffer {
  const b = Buffer.alloc(STATFS_SIZE);
  const fields = [s.type, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree];
  fields.forEach((v, i) => {
    b.writeBigInt64LE(BigInt(v), i * 8);
  });
  b.writeInt32LE(s.fsid[0], 56);
  b.writeInt32LE(s.fsid[1], 60);
  b.writeBigInt64LE(BigInt(s.namelen), 64);
  b.writeBigInt64LE(BigInt(s.frsize), 72);
  b.writeBigInt64LE(BigInt(s.flags), 80);
  return b;
}
