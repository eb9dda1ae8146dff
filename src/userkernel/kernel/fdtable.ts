// File descriptors. A descriptor number points at an open file description (shared by dup
// and, later, fork); the description does the I/O. Descriptions are the host streams given
// to the sandbox as stdio and the VFS's files, directories and pipes, all behind the same
// interface, so the syscalls need not know which is which.
import { fail } from "../errno.js";
import { lockKey, releaseDescription, releasePosix } from "./locks.js";
import type { Wait, WaitQueue } from "./wait.js";

export const S_IFIFO = 0o010000;

export const POLLIN = 0x1;
export const POLLPRI = 0x2;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const S_IFCHR = 0o020000;
export const S_IFREG = 0o100000;

/** What fstat reports about a description (fields the VFS will fill completely). */
export interface FileStat {
  mode: number;
  size: number;
  ino: number;
  dev: number;
  rdev: number;
  nlink: number;
  uid: number;
  gid: number;
  blksize: number;
}

/**
 * An open file description. Every method may return a Promise (work that takes a while, such
 * as the gofer's), but none waits for another party: what would have to (a pipe, a host
 * stream) fails with EAGAIN and has a `queue`. Every failure is a thrown KernelError. An absent optional method means the
 * operation does not apply, and the syscall returns what Linux returns for such a file:
 * read/write -> EBADF; pread/pwrite -> ESPIPE (a stream); seek -> ESPIPE; ioctl -> ENOTTY;
 * getdents64 -> ENOTDIR; truncate -> EINVAL; sync -> EINVAL.
 */
export interface FileDescription {
  /** Open flags as the application sees them (O_RDONLY/O_WRONLY/O_RDWR, O_APPEND, O_NONBLOCK...). */
  flags: number;
  /** Read up to dst.length bytes at the file position; 0 means end of file. */
  read?(dst: Uint8Array): number | Promise<number>;
  /** Write src (a copy the description may keep); returns bytes accepted. */
  write?(src: Buffer): number | Promise<number>;
  /** Positional I/O: does not move the file position. */
  pread?(dst: Uint8Array, offset: number): number | Promise<number>;
  pwrite?(src: Buffer, offset: number): number | Promise<number>;
  /** lseek: returns the new position. */
  seek?(offset: number, whence: number): number | Promise<number>;
  /** Fill dst with linux_dirent64 records; returns bytes used (0 at the end). */
  getdents64?(dst: Uint8Array): number | Promise<number>;
  truncate?(length: number): void | Promise<void>;
  sync?(): void | Promise<void>;
  ioctl?(request: number, arg: bigint): number | Promise<number>;
  /**
   * poll(2) readiness now: POLLIN, POLLOUT, POLLHUP, POLLERR bits. Absent: always readable
   * and writable (Linux's DEFAULT_POLLMASK, as for regular files, whatever the access mode).
   */
  poll?(): number;
  /**
   * Notified with poll bits whenever poll() may answer differently (data came, space freed,
   * an end closed). A description that can make a caller wait has one; its read or write
   * then fails with EAGAIN instead of waiting, and the syscall blocks the task on this queue
   * unless the description is O_NONBLOCK (kernel/blocking-io.ts).
   */
  readonly queue?: WaitQueue;
  /** What a blocking open must wait for before it returns (a FIFO end waiting for its peer). */
  openWait?(): Wait | undefined;
  stat(): FileStat;
  /** Called when the last descriptor referring to the description is closed. */
  release?(): void;
}

interface Slot {
  desc: FileDescription;
  cloexec: boolean;
}

/** The host's default RLIMIT_NOFILE soft limit. */
export const DEFAULT_NOFILE = 1024;

/**
 * How many descriptors, in every table, refer to each open description: dup within a table
 * and fork's copy of a table both add one, and the last close releases it (a pipe's write end
 * a child still holds stays open when the parent closes its own).
 */
const refs = new WeakMap<FileDescription, number>();

export class FdTable {
  private readonly slots = new Map<number, Slot>();
  limit = DEFAULT_NOFILE;
  /** Tasks using the table (CLONE_FILES shares it); the last to leave closes every descriptor. */
  private users = 1;

  ref(): this {
    this.users++;
    return this;
  }

  unref(): void {
    if (--this.users === 0) this.closeAll();
  }

  get(fd: number): FileDescription {
    const s = this.slots.get(fd);
    if (!s) fail("EBADF");
    return s.desc;
  }

  /** Every open descriptor and its description (/proc/self/fd). */
  entries(): Map<number, FileDescription> {
    return new Map([...this.slots].map(([fd, s]) => [fd, s.desc]));
  }

  has(fd: number): boolean {
    return this.slots.has(fd);
  }

  getCloexec(fd: number): boolean {
    const s = this.slots.get(fd);
    if (!s) fail("EBADF");
    return s.cloexec;
  }

  setCloexec(fd: number, on: boolean): void {
    const s = this.slots.get(fd);
    if (!s) fail("EBADF");
    s.cloexec = on;
  }

  private lowestFree(from: number): number {
    for (let fd = from; fd < this.limit; fd++) if (!this.slots.has(fd)) return fd;
    return fail("EMFILE");
  }

  /** Install at the lowest free number >= `from`. */
  install(desc: FileDescription, cloexec = false, from = 0): number {
    const fd = this.lowestFree(from);
    this.put(fd, desc, cloexec);
    return fd;
  }

  /** Install at exactly `fd`, closing what was there (dup2 semantics). */
  installAt(fd: number, desc: FileDescription, cloexec = false): void {
    if (fd < 0 || fd >= this.limit) fail("EBADF");
    if (this.slots.has(fd)) this.close(fd);
    this.put(fd, desc, cloexec);
  }

  private put(fd: number, desc: FileDescription, cloexec: boolean): void {
    this.slots.set(fd, { desc, cloexec });
    refs.set(desc, (refs.get(desc) ?? 0) + 1);
  }

  /** fork without CLONE_FILES: the same descriptions under the same numbers, close-on-exec kept. */
  copy(): FdTable {
    const c = new FdTable();
    c.limit = this.limit;
    for (const [fd, s] of this.slots) c.put(fd, s.desc, s.cloexec);
    return c;
  }

  close(fd: number): void {
    const s = this.slots.get(fd);
    if (!s) fail("EBADF");
    this.slots.delete(fd);
    // Any close of a file drops the POSIX locks this table's owner holds on it (locks.ts).
    releasePosix(this, lockKey(s.desc));
    const n = (refs.get(s.desc) ?? 1) - 1;
    if (n === 0) {
      refs.delete(s.desc);
      releaseDescription(s.desc);
      s.desc.release?.();
    } else refs.set(s.desc, n);
  }

  /** execve: descriptors marked close-on-exec go. */
  closeOnExec(): void {
    for (const [fd, s] of [...this.slots]) if (s.cloexec) this.close(fd);
  }

  closeAll(): void {
    for (const fd of [...this.slots.keys()]) this.close(fd);
  }
}
