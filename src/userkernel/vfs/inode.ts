// The kernel's in-memory inodes. One tree serves every file system: tmpfs inodes carry their
// data, image inodes start out pointing at a path of the rootfs (read through the gofer) and
// are "copied up" into memory on their first modification. So the tree itself is the
// overlay's upper layer: a name removed from an image directory is remembered as a whiteout,
// and a directory made in its place has no image side (it is opaque).
import {
  close as closeHostFd,
  type HostStat,
  O_DIRECTORY,
  O_PATH,
  O_RDONLY,
  pread,
  readAllDirents,
} from "../../sys/file.js";
import { fail } from "../errno.js";
import type { GoferClient } from "../gofer/client.js";
import type { FileDescription } from "../kernel/fdtable.js";
import { nowNs, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, type Stat } from "./stat.js";

export interface Cred {
  /** The filesystem uid and gid (the effective ids, as Linux's fsuid follows euid). */
  uid: number;
  gid: number;
  /** Supplementary groups. */
  groups?: readonly number[];
}

/** What each operation needs to know about its caller. */
export interface Ctx {
  cred: Cred;
  /** The working directory relative paths start from when no dirfd is given. */
  cwd: DirInode;
  /** The process's root ("/"), if it chrooted; the VFS root otherwise. */
  root?: DirInode;
  /** The caller's pid, for /proc/self. */
  pid: number;
  /** The caller's thread id, for /proc/thread-self (the pid when absent). */
  tid?: number;
}

/** One mounted file system instance: st_dev, its inode numbers, and its /proc/mounts line. */
export class Fs {
  private nextIno: number;
  /** Bytes of file content held in memory, and the most it may hold (ENOSPC beyond). */
  used = 0;
  limit = Number.MAX_SAFE_INTEGER;
  constructor(
    readonly dev: number,
    readonly type: string,
    readonly source: string,
    // Not readonly: a read-only root (runtime spec root.readonly) is switched over once the
    // container's mounts, whose points may need making in it, are in place.
    public readOnly = false,
    firstIno = 1,
  ) {
    this.nextIno = firstIno;
  }
  allocIno(): number {
    return this.nextIno++;
  }

  private byHostIno?: Map<string, number>;
  /**
   * The number a host file shows: its own when it lives on `hostDev`, else one of ours, kept
   * per (device, inode), since another device's numbers could clash with the first's.
   */
  protected hostIno(st: { dev: number; ino: number }, hostDev: number): number {
    if (st.dev === hostDev) return st.ino;
    this.byHostIno ??= new Map();
    const key = `${st.dev}:${st.ino}`;
    let n = this.byHostIno.get(key);
    if (n === undefined) {
      n = this.allocIno();
      this.byHostIno.set(key, n);
    }
    return n;
  }
  /** Account for `delta` more (or fewer) bytes; a container cannot grow the kernel without bound. */
  charge(delta: number): void {
    if (delta > 0 && this.used + delta > this.limit) fail("ENOSPC");
    this.used += delta;
  }
}

export abstract class Inode {
  readonly ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink = 1;
  rdev = 0;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;

  constructor(
    readonly fs: Fs,
    mode: number,
    uid: number,
    gid: number,
    ino?: number,
  ) {
    this.ino = ino ?? fs.allocIno();
    this.mode = mode;
    this.uid = uid;
    this.gid = gid;
    this.atimeNs = this.mtimeNs = this.ctimeNs = nowNs();
  }

  get type(): number {
    return this.mode & S_IFMT;
  }

  size(): number {
    return 0;
  }

  /** Attributes the image recorded, for inodes that come from it. */
  adoptHostStat(s: HostStat): void {
    this.mode = s.mode;
    this.uid = s.uid;
    this.gid = s.gid;
    this.nlink = s.nlink;
    this.atimeNs = s.atimeNs;
    this.mtimeNs = s.mtimeNs;
    this.ctimeNs = s.ctimeNs;
  }

  stat(): Stat {
    const size = this.size();
    return {
      dev: this.fs.dev,
      ino: this.ino,
      nlink: this.nlink,
      mode: this.mode,
      uid: this.uid,
      gid: this.gid,
      rdev: this.rdev,
      size,
      blksize: 4096,
      blocks: Math.ceil(size / 4096) * 8,
      atimeNs: this.atimeNs,
      mtimeNs: this.mtimeNs,
      ctimeNs: this.ctimeNs,
    };
  }

  /** The content changed: mtime and ctime move. */
  modified(): void {
    this.mtimeNs = this.ctimeNs = nowNs();
  }

  /** The attributes changed: ctime moves. */
  changed(): void {
    this.ctimeNs = nowNs();
  }
}

/** Where an image inode lives in the rootfs, and the gofer that opens it. */
export interface ImageRef {
  gofer: GoferClient;
  /** Path relative to the rootfs, no symlinks in it ("." is the root). */
  path: string;
}

const MAX_ABSENT = 4096;

/** fcntl(F_ADD_SEALS)'s seals (Linux's values). */
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const F_SEAL_WRITE = 0x8;
export const F_SEAL_FUTURE_WRITE = 0x10;

function childPath(parent: string, name: string): string {
  return parent === "." ? name : `${parent}/${name}`;
}

export class FileInode extends Inode {
  private data: Buffer = Buffer.alloc(0);
  private length = 0;
  /** Set while the content is still the image's. */
  private image: (ImageRef & { size: number; fd: number | null; opening: Promise<void> | null }) | null;
  /** Descriptions open on the image content; its host descriptor closes with the last. */
  private users = 0;
  /** memfd seals (F_SEAL_*, vfs/memfd.ts): the changes the content no longer allows. */
  seals = 0;

  constructor(
    fs: Fs,
    mode: number,
    uid: number,
    gid: number,
    image?: ImageRef & { size: number },
    ino?: number,
  ) {
    super(fs, S_IFREG | (mode & 0o7777), uid, gid, ino);
    this.image = image ? { ...image, fd: null, opening: null } : null;
  }

  /** True while reads still go to the image. */
  get fromImage(): boolean {
    return this.image !== null;
  }

  override size(): number {
    return this.image ? this.image.size : this.length;
  }

  /** Make the content readable without waiting: opens the image file through the gofer. */
  async acquire(): Promise<void> {
    this.users++;
    const img = this.image;
    if (!img || img.fd !== null) return;
    if (!img.opening)
      img.opening = img.gofer.open(img.path, O_RDONLY).then(
        (r) => {
          img.fd = r.fd;
          img.opening = null;
        },
        (e: unknown) => {
          img.opening = null;
          throw e;
        },
      );
    try {
      await img.opening;
    } catch (e) {
      this.users--;
      throw e;
    }
  }

  release(): void {
    if (--this.users > 0) return;
    this.users = 0;
    const img = this.image;
    if (img && img.fd !== null) {
      closeHostFd(img.fd);
      img.fd = null;
    }
    this.freeIfUnused();
  }

  /** A name went away: with no name and no open description left, the content is freed. */
  unlinked(): void {
    this.nlink = Math.max(0, this.nlink - 1);
    this.changed();
    this.freeIfUnused();
  }

  private freeIfUnused(): void {
    if (this.nlink > 0 || this.users > 0 || this.image) return;
    this.fs.charge(-this.length);
    this.length = 0;
    this.data = Buffer.alloc(0);
  }

  /** Read at `pos`; the caller holds acquire() so this never waits. */
  read(pos: number, dst: Uint8Array): number {
    const size = this.size();
    if (pos >= size || dst.length === 0) return 0;
    const n = Math.min(dst.length, size - pos);
    const img = this.image;
    if (img) {
      if (img.fd === null) fail("EIO", "image file read without acquire()");
      let done = 0;
      while (done < n) {
        const r = pread(img.fd, dst.subarray(done, n), pos + done);
        if (r === 0) break;
        done += r;
      }
      return done;
    }
    dst.set(this.data.subarray(pos, pos + n));
    return n;
  }

  /** Copy the image content into memory: from now on the file is the overlay's alone. */
  async copyUp(): Promise<void> {
    if (!this.image) return;
    await this.acquire();
    try {
      const img = this.image;
      if (!img) return;
      this.fs.charge(img.size);
      const buf = Buffer.alloc(img.size);
      const n = this.read(0, buf);
      this.fs.charge(n - img.size);
      this.data = buf;
      this.length = n;
      this.image = null;
      if (img.fd !== null) closeHostFd(img.fd);
    } finally {
      this.users--;
    }
  }

  private reserve(size: number): void {
    if (size <= this.data.length) return;
    const grown = Buffer.alloc(Math.max(size, Math.min(this.data.length * 2, size + (64 << 20)), 4096));
    this.data.copy(grown, 0, 0, this.length);
    this.data = grown;
  }

  /** Write at `pos` (after copyUp()). */
  write(pos: number, src: Uint8Array): number {
    if (this.image) fail("EIO", "image file written without copyUp()");
    if (src.length === 0) return 0;
    const end = pos + src.length;
    if (end > Number.MAX_SAFE_INTEGER) fail("EFBIG");
    if (this.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) || (this.seals & F_SEAL_GROW && end > this.length))
      fail("EPERM", "the file is sealed");
    if (end > this.length) this.fs.charge(end - this.length);
    this.reserve(end);
    // Bytes between the old end and pos read back as zeros: Buffer.alloc zeroed them, and
    // truncate() zeroes what it cuts off.
    this.data.set(src, pos);
    if (end > this.length) this.length = end;
    this.modified();
    return src.length;
  }

  /** Set the size (after copyUp()). */
  truncate(size: number): void {
    if (this.image) fail("EIO", "image file truncated without copyUp()");
    if (
      (this.seals & F_SEAL_SHRINK && size < this.length) ||
      (this.seals & F_SEAL_GROW && size > this.length)
    )
      fail("EPERM", "the file is sealed");
    this.fs.charge(size - this.length);
    if (size < this.length) this.data.fill(0, size, this.length);
    else this.reserve(size);
    this.length = size;
    this.modified();
  }
}

export class SymlinkInode extends Inode {
  constructor(
    fs: Fs,
    readonly target: string | ((ctx: Ctx) => string),
    uid: number,
    gid: number,
    ino?: number,
  ) {
    super(fs, S_IFLNK | 0o777, uid, gid, ino);
  }
  readTarget(ctx: Ctx): string {
    return typeof this.target === "string" ? this.target : this.target(ctx);
  }
  override size(): number {
    return typeof this.target === "string" ? Buffer.byteLength(this.target, "latin1") : 0;
  }
}

/** A character device of the kernel: opening it asks the driver for a description. */
export class DeviceInode extends Inode {
  constructor(
    fs: Fs,
    mode: number,
    rdev: number,
    readonly driver: ((flags: number) => FileDescription) | null,
  ) {
    super(fs, mode, 0, 0);
    this.rdev = rdev;
  }
}

/** A socket or device node that the image holds or mknod made: it has no driver. */
export class SpecialInode extends Inode {}

/** A named pipe: the kernel's own, whether mkfifo made it or the image has one. */
export class FifoInode extends Inode {
  /** The pipe while any end is open. */
  pipe: import("./pipe.js").Pipe | null = null;
}

/** A file of a synthetic file system (proc): its content is made when it is opened. */
export class GeneratedInode extends Inode {
  constructor(
    fs: Fs,
    readonly generate: (ctx: Ctx) => Buffer,
    mode = 0o444,
    /** A writable file (/proc/<pid>/comm): takes each write(2) whole; returns bytes taken. */
    readonly store?: (ctx: Ctx, data: Buffer) => number,
  ) {
    super(fs, S_IFREG | mode, 0, 0);
  }
}

/** A file whose open makes a description of its own (/proc/<pid>/mem reads the process's memory). */
export class OpenableInode extends Inode {
  constructor(
    fs: Fs,
    mode: number,
    readonly opener: (inode: OpenableInode, flags: number) => FileDescription,
  ) {
    super(fs, S_IFREG | mode, 0, 0);
  }
}

export interface DirEntry {
  name: string;
  ino: number;
  /** d_type */
  type: number;
}

/**
 * A directory. Its `children` are the names known in memory (created here, or looked up in
 * the image and kept); `image` is the rootfs directory merged beneath them, minus `whiteouts`.
 */
export class DirInode extends Inode {
  parent: DirInode;
  name: string;
  readonly children = new Map<string, Inode>();
  /** The root of a file system mounted on this directory. */
  mounted: DirInode | null = null;
  /** Files bind-mounted over names of this directory (a file volume covers the name). */
  fileMounts: Map<string, Inode> | null = null;
  removed = false;
  image: ImageRef | null = null;
  readonly whiteouts = new Set<string>();
  private imageNames: Map<string, { ino: number; type: number }> | null = null;
  private readonly absent = new Set<string>();
  private readonly inflight = new Map<string, Promise<Inode | null>>();
  /** Turns an image entry's host stat into an inode (set by the overlay). */
  adopt: ((parent: DirInode, name: string, st: HostStat, fd: number, path: string) => Inode) | null = null;

  constructor(
    fs: Fs,
    mode: number,
    uid: number,
    gid: number,
    parent: DirInode | null,
    name: string,
    ino?: number,
  ) {
    super(fs, S_IFDIR | (mode & 0o7777), uid, gid, ino);
    this.parent = parent ?? this;
    this.name = name;
    this.nlink = 2;
  }

  override size(): number {
    return 4096;
  }

  /** The inode for `name` if known without asking the gofer: null if known absent. */
  cached(name: string): Inode | null | undefined {
    const c = this.children.get(name);
    if (c) return c;
    if (!this.image || this.whiteouts.has(name) || this.absent.has(name)) return null;
    if (this.imageNames && !this.imageNames.has(name)) return null;
    return undefined;
  }

  async lookup(name: string): Promise<Inode | null> {
    const c = this.cached(name);
    if (c !== undefined) return c;
    let p = this.inflight.get(name);
    if (!p) {
      p = this.lookupImage(name).finally(() => this.inflight.delete(name));
      this.inflight.set(name, p);
    }
    await p;
    // The tree may have changed while the gofer answered (a create, an unlink): it wins.
    const now = this.cached(name);
    return now === undefined ? null : now;
  }

  private async lookupImage(name: string): Promise<Inode | null> {
    const img = this.image!;
    const path = childPath(img.path, name);
    let opened: Awaited<ReturnType<GoferClient["open"]>>;
    try {
      opened = await img.gofer.open(path, O_PATH);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") {
        if (this.image === img && !this.children.has(name)) {
          // Programs probe many missing names (PATH, import paths): remember a bounded few.
          if (this.absent.size >= MAX_ABSENT) this.absent.clear();
          this.absent.add(name);
        }
        return null;
      }
      throw e;
    }
    try {
      if (this.image !== img || this.cached(name) !== undefined) return null;
      const node = this.adopt!(this, name, opened.stat, opened.fd, path);
      this.children.set(name, node);
      return node;
    } finally {
      closeHostFd(opened.fd);
    }
  }

  /** Every name in the merged directory (without "." and ".."), in a stable order. */
  async list(): Promise<DirEntry[]> {
    const out: DirEntry[] = [];
    const img = this.image;
    if (img) {
      if (!this.imageNames) {
        const r = await img.gofer.open(img.path, O_RDONLY | O_DIRECTORY);
        try {
          const names = new Map<string, { ino: number; type: number }>();
          for (const d of readAllDirents(r.fd))
            if (d.name !== "." && d.name !== "..") names.set(d.name, { ino: d.ino, type: d.type });
          if (this.image === img) this.imageNames = names;
        } finally {
          closeHostFd(r.fd);
        }
      }
      if (this.image === img && this.imageNames)
        for (const [name, d] of this.imageNames)
          if (!this.whiteouts.has(name) && !this.children.has(name))
            out.push({ name, ino: this.imageIno(d.ino), type: d.type });
    }
    for (const [name, node] of this.children)
      out.push({ name, ino: node.ino, type: ((node.mode & S_IFMT) >>> 12) & 0xf });
    return out;
  }

  /** The inode number an image entry gets (set by the overlay, identity elsewhere). */
  imageIno: (hostIno: number) => number = (i) => i;

  async isEmpty(): Promise<boolean> {
    return (await this.list()).length === 0;
  }

  /** Add a name (the caller checked it is free). */
  attach(name: string, node: Inode): void {
    this.children.set(name, node);
    this.absent.delete(name);
    if (node instanceof DirInode) {
      node.parent = this;
      node.name = name;
      this.nlink++;
    }
    this.modified();
  }

  /** Remove a name; if the image has it, a whiteout keeps it hidden. */
  detach(name: string): void {
    const node = this.children.get(name);
    this.children.delete(name);
    if (this.image) this.whiteouts.add(name);
    if (node instanceof DirInode) this.nlink--;
    this.modified();
  }

  /** Forget the image side: what the directory holds is only what is in memory (opaque). */
  makeOpaque(): void {
    this.image = null;
    this.imageNames = null;
    this.whiteouts.clear();
    this.absent.clear();
  }

  isRootOfMount(): boolean {
    return this.parent === this || this.parent.children.get(this.name) !== this;
  }
}

export { childPath };

/**
 * The inode for a host file that is neither a directory nor a regular file, as the image and
 * bind mounts show them: a symlink (its target text, resolved later by the kernel's walk,
 * inside the container), a FIFO (a pipe of the kernel: the host's is never opened), or a
 * device node or socket (shown, never opened on the host).
 */
export function hostSpecialInode(fs: Fs, st: HostStat, ino: number, target: () => string): Inode {
  let node: Inode;
  switch (st.mode & S_IFMT) {
    case S_IFLNK:
      node = new SymlinkInode(fs, target(), st.uid, st.gid, ino);
      break;
    case S_IFIFO:
      node = new FifoInode(fs, st.mode, st.uid, st.gid, ino);
      break;
    default:
      node = new SpecialInode(fs, st.mode, st.uid, st.gid, ino);
      node.rdev = st.rdev;
  }
  node.adoptHostStat(st);
  return node;
}
