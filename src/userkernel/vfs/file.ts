// Open file descriptions of the VFS: what a descriptor of a regular file, a directory, a
// synthetic file or an O_PATH handle does. They implement the kernel's FileDescription, so
// the syscalls treat them like the host stdio streams.
import { fail } from "../errno.js";
import type { FileDescription, FileStat } from "../kernel/fdtable.js";
import { readShared, truncateShared, writeShared } from "../mm/shared-files.js";
import { encodeDirents } from "./dirent.js";
import {
  type Ctx,
  type DirEntry,
  type DirInode,
  type FileInode,
  GeneratedInode,
  type Inode,
} from "./inode.js";
import { dtype } from "./stat.js";

export const O_ACCMODE = 3;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;

export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

export function canRead(flags: number): boolean {
  return (flags & O_ACCMODE) !== O_WRONLY;
}
export function canWrite(flags: number): boolean {
  const m = flags & O_ACCMODE;
  return m === O_WRONLY || m === O_RDWR;
}

export function fileStat(inode: Inode): FileStat {
  const s = inode.stat();
  return {
    mode: s.mode,
    size: s.size,
    ino: s.ino,
    dev: s.dev,
    rdev: s.rdev,
    nlink: s.nlink,
    uid: s.uid,
    gid: s.gid,
    blksize: s.blksize,
  };
}

/** Every description the VFS makes knows its inode (fstat, fchmod, *at with a dirfd). */
export abstract class VfsFile implements FileDescription {
  /** The path it was opened by, for /proc/self/fd (it may have moved since, as on Linux). */
  path: string | undefined;
  constructor(
    readonly inode: Inode,
    public flags: number,
  ) {}
  stat(): FileStat {
    return fileStat(this.inode);
  }
  release(): void {}
}

function seekTo(pos: number, size: number, offset: number, whence: number): number {
  let p: number;
  switch (whence) {
    case SEEK_SET:
      p = offset;
      break;
    case SEEK_CUR:
      p = pos + offset;
      break;
    case SEEK_END:
      p = size + offset;
      break;
    case SEEK_DATA:
      if (offset >= size) fail("ENXIO");
      p = offset;
      break;
    case SEEK_HOLE:
      if (offset >= size) fail("ENXIO");
      p = size;
      break;
    default:
      return fail("EINVAL");
  }
  if (p < 0 || !Number.isSafeInteger(p)) fail("EINVAL");
  return p;
}

export class RegularFile extends VfsFile {
  pos = 0;
  private released = false;
  constructor(
    override readonly inode: FileInode,
    flags: number,
  ) {
    super(inode, flags);
  }

  read(dst: Uint8Array): number {
    const n = this.pread(dst, this.pos);
    this.pos += n;
    return n;
  }

  pread(dst: Uint8Array, offset: number): number {
    if (!canRead(this.flags)) fail("EBADF");
    if (offset < 0) fail("EINVAL");
    const n = this.inode.read(offset, dst);
    // What shared mappings of the file wrote is its content too.
    if (n > 0) readShared(this.inode, offset, dst.subarray(0, n));
    return n;
  }

  write(src: Buffer): number {
    if (this.flags & O_APPEND) this.pos = this.inode.size();
    const n = this.pwrite(src, this.pos);
    this.pos += n;
    return n;
  }

  pwrite(src: Buffer, offset: number): number {
    if (!canWrite(this.flags)) fail("EBADF");
    if (offset < 0) fail("EINVAL");
    // Linux appends with O_APPEND whatever offset pwrite names.
    const at = this.flags & O_APPEND ? this.inode.size() : offset;
    const n = this.inode.write(at, src);
    writeShared(this.inode, at, src.subarray(0, n));
    return n;
  }

  seek(offset: number, whence: number): number {
    this.pos = seekTo(this.pos, this.inode.size(), offset, whence);
    return this.pos;
  }

  async truncate(length: number): Promise<void> {
    if (!canWrite(this.flags)) fail("EINVAL");
    if (length < 0) fail("EINVAL");
    await this.inode.copyUp();
    this.inode.truncate(length);
    truncateShared(this.inode, length);
  }

  /**
   * fallocate's two operations a tmpfs file has (the syscall layer checked the mode): make
   * [offset, offset+length) part of the file (its size grows to cover it unless `keepSize`),
   * or punch a hole (the range reads as zeros; the size stays).
   */
  async allocate(offset: number, length: number, op: "reserve" | "punch", keepSize: boolean): Promise<void> {
    await this.inode.copyUp();
    const size = this.inode.size();
    const end = offset + length;
    if (op === "punch") {
      const stop = Math.min(end, size);
      const zeros = Buffer.alloc(Math.min(stop - offset, 1 << 20));
      for (let at = offset; at < stop; at += zeros.length) {
        const part = zeros.subarray(0, Math.min(zeros.length, stop - at));
        this.inode.write(at, part);
        writeShared(this.inode, at, part);
      }
      return;
    }
    if (!keepSize && end > size) {
      this.inode.truncate(end);
      truncateShared(this.inode, end);
    }
  }

  sync(): void {}

  override release(): void {
    if (this.released) return;
    this.released = true;
    this.inode.release();
  }
}

export class DirFile extends VfsFile {
  private entries: DirEntry[] | null = null;
  private pos = 0;
  constructor(
    override readonly inode: DirInode,
    flags: number,
    /** The directory ".." names, as the opener's root sees it. */
    private readonly dotdot: DirInode,
  ) {
    super(inode, flags);
  }

  read(): number {
    return fail("EISDIR");
  }

  async getdents64(dst: Uint8Array): Promise<number> {
    if (this.inode.removed) return 0;
    if (!this.entries) {
      const list = await this.inode.list();
      this.entries = [
        { name: ".", ino: this.inode.ino, type: dtype(this.inode.mode) },
        { name: "..", ino: this.dotdot.ino, type: dtype(this.dotdot.mode) },
        ...list,
      ];
    }
    const { bytes, next } = encodeDirents(this.entries, this.pos, dst);
    if (bytes === 0 && next < this.entries.length) fail("EINVAL");
    this.pos = next;
    return bytes;
  }

  seek(offset: number, whence: number): number {
    if (whence === SEEK_CUR && offset === 0) return this.pos;
    if (whence !== SEEK_SET || offset < 0) fail("EINVAL");
    // Rewinding re-reads the directory, as rewinddir() promises.
    if (offset === 0) this.entries = null;
    this.pos = offset;
    return offset;
  }

  sync(): void {}
}

/** An O_PATH descriptor: good for fstat, *at calls and fchdir, not for I/O. */
export class PathFile extends VfsFile {
  read(): number {
    return fail("EBADF");
  }
  write(): number {
    return fail("EBADF");
  }
  ioctl(): number {
    return fail("EBADF");
  }
  getdents64(): number {
    return fail("EBADF");
  }
}

/** A synthetic file (proc): its content is fixed when it is opened, like seq_file's first read. */
export class SnapshotFile extends VfsFile {
  private pos = 0;
  constructor(
    inode: Inode,
    flags: number,
    private readonly content: Buffer,
    /** The opener, for a writable file's store (proc files check who writes). */
    private readonly opener?: Ctx,
  ) {
    super(inode, flags);
  }
  read(dst: Uint8Array): number {
    const n = this.pread(dst, this.pos);
    this.pos += n;
    return n;
  }
  pread(dst: Uint8Array, offset: number): number {
    if (offset < 0) fail("EINVAL");
    if (offset >= this.content.length) return 0;
    const n = Math.min(dst.length, this.content.length - offset);
    dst.set(this.content.subarray(offset, offset + n));
    return n;
  }
  write(src: Buffer): number {
    const store = this.inode instanceof GeneratedInode ? this.inode.store : undefined;
    if (!canWrite(this.flags)) return fail("EBADF");
    if (!store || !this.opener) return fail("EIO");
    return store(this.opener, src);
  }
  seek(offset: number, whence: number): number {
    this.pos = seekTo(this.pos, this.content.length, offset, whence);
    return this.pos;
  }
}

export function isVfsFile(d: FileDescription): d is VfsFile {
  return d instanceof VfsFile;
}
