// Bind mounts (volumes): a host directory or file from the container's config, served by the
// gofer (root N of its roots) and shown at a destination in the container. Unlike the
// rootfs, nothing is copied up: a read-write volume's changes go to the host through the
// gofer, and what the host changes shows at once, because nothing of a volume is cached
// but the identity of its inodes (a name is looked up on the host at every walk; a directory
// is listed anew at every open). Inode objects are kept per name only so that a process's
// cwd, an open directory and a mount point stay the same object while the host file lives.
import {
  close as closeHostFd,
  fstat,
  type HostStat,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  pread,
  readAllDirents,
  readlinkat,
} from "../../sys/file.js";
import { ftruncate, pwrite } from "../../sys/fileat.js";
import { fail } from "../errno.js";
import type { GoferClient } from "../gofer/client.js";
import {
  type Ctx,
  type DirEntry,
  DirInode,
  FileInode,
  Fs,
  hostSpecialInode,
  type Inode,
  SymlinkInode,
} from "./inode.js";
import { S_IFDIR, S_IFMT, S_IFREG } from "./stat.js";

/** One bind mount: the gofer's root `root`, read-only or not as the config said. */
export class BindFs extends Fs {
  constructor(
    dev: number,
    source: string,
    readOnly: boolean,
    readonly gofer: GoferClient,
    readonly root: number,
    readonly hostDev: number,
  ) {
    super(dev, "bind", source, readOnly, 2 ** 32);
  }

  /** The host's inode number (another host device beneath the source gets numbers of its own). */
  inoFor(st: { dev: number; ino: number }): number {
    return this.hostIno(st, this.hostDev);
  }
}

function joinPath(dir: string, name: string): string {
  return dir === "." ? name : `${dir}/${name}`;
}

/** Whether `node` still stands for the host file `st` (same inode, same type). */
function sameHost(node: Inode, fs: BindFs, st: HostStat): boolean {
  return node.ino === fs.inoFor(st) && (node.mode & S_IFMT) === (st.mode & S_IFMT);
}

/** A host file of a volume; reads and writes go to a descriptor the gofer opened. */
export class BindFile extends FileInode {
  private fd: number | null = null;
  private writable = false;
  private opening: Promise<void> | null = null;
  private holders = 0;
  private knownSize: number;

  constructor(
    readonly bfs: BindFs,
    st: HostStat,
    /** Where it was last seen: the directory (null for a file volume's root) and name. */
    public dir: BindDir | null,
    public fname: string,
  ) {
    super(bfs, st.mode, st.uid, st.gid, undefined, bfs.inoFor(st));
    this.adoptHostStat(st);
    this.knownSize = st.size;
  }

  /** Its path beneath the gofer's root. */
  get hostPath(): string {
    return this.dir ? joinPath(this.dir.hostPath, this.fname) : ".";
  }

  override get fromImage(): boolean {
    return false;
  }

  override adoptHostStat(s: HostStat): void {
    super.adoptHostStat(s);
    this.knownSize = s.size;
  }

  /** The host's attributes now (a host process may have written it). */
  private refresh(): void {
    if (this.fd !== null) this.adoptHostStat(fstat(this.fd));
  }

  override size(): number {
    this.refresh();
    return this.knownSize;
  }

  override stat() {
    this.refresh();
    return super.stat();
  }

  /** A descriptor of the host file, writable if asked (then it replaces a read-only one). */
  private async ensureFd(write: boolean): Promise<void> {
    while (this.opening) await this.opening;
    if (this.fd !== null && (this.writable || !write)) return;
    const flags = write ? O_RDWR : O_RDONLY;
    this.opening = (async () => {
      const r = write
        ? await this.bfs.gofer.openWrite(this.hostPath, flags, this.bfs.root)
        : await this.bfs.gofer.open(this.hostPath, flags, false, this.bfs.root);
      if (this.fd !== null) closeHostFd(this.fd);
      this.fd = r.fd;
      this.writable = write;
      this.adoptHostStat(r.stat);
    })();
    try {
      await this.opening;
    } finally {
      this.opening = null;
    }
  }

  /** Take a descriptor the gofer just made (a created file): the file is open read-write. */
  adoptFd(fd: number): void {
    if (this.fd !== null) closeHostFd(this.fd);
    this.fd = fd;
    this.writable = true;
  }

  override async acquire(): Promise<void> {
    this.holders++;
    try {
      await this.ensureFd(false);
    } catch (e) {
      this.holders--;
      throw e;
    }
  }

  override release(): void {
    if (--this.holders > 0) return;
    this.holders = 0;
    this.dropFd();
  }

  private dropFd(): void {
    if (this.fd !== null && this.holders === 0 && !this.opening) {
      closeHostFd(this.fd);
      this.fd = null;
      this.writable = false;
    }
  }

  override unlinked(): void {
    this.nlink = Math.max(0, this.nlink - 1);
    this.changed();
  }

  override read(pos: number, dst: Uint8Array): number {
    if (this.fd === null) fail("EIO", "volume file read without acquire()");
    if (dst.length === 0) return 0;
    return pread(this.fd, dst, pos);
  }

  /** Nothing to copy: the volume is written in place, so only a writable descriptor is needed. */
  override async copyUp(): Promise<void> {
    if (this.bfs.readOnly) fail("EROFS");
    await this.ensureFd(true);
  }

  override write(pos: number, src: Uint8Array): number {
    if (this.fd === null || !this.writable) fail("EIO", "volume file written without copyUp()");
    if (src.length === 0) return 0;
    if (pos + src.length > Number.MAX_SAFE_INTEGER) fail("EFBIG");
    let done = 0;
    while (done < src.length) done += pwrite(this.fd, src.subarray(done), pos + done);
    return done;
  }

  override truncate(size: number): void {
    if (this.fd === null || !this.writable) fail("EIO", "volume file truncated without copyUp()");
    ftruncate(this.fd, size);
    // truncate(2) by path holds no description: the descriptor goes now.
    this.dropFd();
  }
}

/** A host directory of a volume (its root, or one beneath). */
export class BindDir extends DirInode {
  constructor(
    readonly bfs: BindFs,
    st: HostStat,
    parent: DirInode | null,
    name: string,
    /** The volume's root: its path is "." whatever it is mounted on. */
    readonly isVolumeRoot = false,
  ) {
    super(bfs, st.mode, st.uid, st.gid, parent, name, bfs.inoFor(st));
    this.adoptHostStat(st);
  }

  get hostPath(): string {
    if (this.isVolumeRoot) return ".";
    const up = this.parent;
    if (!(up instanceof BindDir) || up === this) return ".";
    return joinPath(up.hostPath, this.name);
  }

  /** Only a mount point is known without asking the host; every other name is looked up. */
  override cached(name: string): Inode | null | undefined {
    const c = this.children.get(name);
    if (c instanceof DirInode && c.mounted) return c;
    return undefined;
  }

  override async lookup(name: string): Promise<Inode | null> {
    const mountPoint = this.cached(name);
    if (mountPoint) return mountPoint;
    const path = joinPath(this.hostPath, name);
    let opened: Awaited<ReturnType<GoferClient["open"]>>;
    try {
      opened = await this.bfs.gofer.open(path, O_PATH, false, this.bfs.root);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") {
        this.children.delete(name);
        return null;
      }
      throw e;
    }
    try {
      return this.learn(name, opened.stat, opened.fd);
    } finally {
      closeHostFd(opened.fd);
    }
  }

  /** The inode for a host entry: the one already known if it is the same host file. */
  learn(name: string, st: HostStat, pathFd: number | null): Inode {
    const known = this.children.get(name);
    if (known && sameHost(known, this.bfs, st)) {
      if (known instanceof BindFile) {
        known.dir = this;
        known.fname = name;
      }
      known.adoptHostStat(st);
      return known;
    }
    const node = this.make(name, st, pathFd);
    this.children.set(name, node);
    return node;
  }

  private make(name: string, st: HostStat, pathFd: number | null): Inode {
    const fs = this.bfs;
    switch (st.mode & S_IFMT) {
      case S_IFDIR:
        return new BindDir(fs, st, this, name);
      case S_IFREG:
        return new BindFile(fs, st, this, name);
      default:
        return hostSpecialInode(fs, st, fs.inoFor(st), () => (pathFd === null ? "" : readlinkat(pathFd, "")));
    }
  }

  override async list(): Promise<DirEntry[]> {
    const r = await this.bfs.gofer.open(this.hostPath, O_RDONLY | O_DIRECTORY, false, this.bfs.root);
    try {
      const out: DirEntry[] = [];
      for (const d of readAllDirents(r.fd))
        if (d.name !== "." && d.name !== "..")
          out.push({
            name: d.name,
            ino: this.bfs.inoFor({ dev: this.bfs.hostDev, ino: d.ino }),
            type: d.type,
          });
      return out;
    } finally {
      closeHostFd(r.fd);
    }
  }

  /** A new regular file, made on the host and open read-write. */
  async createFile(ctx: Ctx, name: string, mode: number, gid: number): Promise<BindFile> {
    const r = await this.bfs.gofer.openWrite(
      joinPath(this.hostPath, name),
      O_RDWR | O_EXCL | O_CREAT,
      this.bfs.root,
      {
        mode,
        uid: ctx.cred.uid,
        gid,
      },
    );
    const f = new BindFile(this.bfs, r.stat, this, name);
    f.adoptFd(r.fd);
    this.attach(name, f);
    return f;
  }

  async makeDir(ctx: Ctx, name: string, mode: number, gid: number): Promise<void> {
    const r = await this.bfs.gofer.change(
      { op: "mkdir", path: joinPath(this.hostPath, name), mode, uid: ctx.cred.uid, gid },
      this.bfs.root,
    );
    if (r.stat) this.attach(name, new BindDir(this.bfs, r.stat, this, name));
    else this.modified();
  }

  async makeSymlink(ctx: Ctx, name: string, target: string, gid: number): Promise<void> {
    const r = await this.bfs.gofer.change(
      { op: "symlink", path: joinPath(this.hostPath, name), target, uid: ctx.cred.uid, gid },
      this.bfs.root,
    );
    if (r.stat)
      this.attach(name, new SymlinkInode(this.bfs, target, r.stat.uid, r.stat.gid, this.bfs.inoFor(r.stat)));
  }

  /** unlink or rmdir of `name` on the host. */
  async remove(name: string, dir: boolean): Promise<void> {
    await this.bfs.gofer.change({ op: "unlink", path: joinPath(this.hostPath, name), dir }, this.bfs.root);
    const node = this.children.get(name);
    this.children.delete(name);
    if (node instanceof DirInode) this.nlink = Math.max(2, this.nlink - 1);
    this.modified();
  }

  /** Host path of a name of this directory. */
  pathOfName(name: string): string {
    return joinPath(this.hostPath, name);
  }
}

/** Where an inode of a volume is on the host, for link and rename (undefined: not known by a name). */
export function hostPathOf(node: Inode, dir: BindDir, name: string): string {
  return node instanceof BindFile && node.dir ? node.hostPath : dir.pathOfName(name);
}

/** Change attributes of a volume's inode on the host, then take the host's answer. */
export async function setHostAttrs(
  node: Inode,
  dir: BindDir | null,
  name: string,
  attrs: { mode?: number; uid?: number; gid?: number; atimeNs?: string; mtimeNs?: string },
): Promise<void> {
  const fs = node.fs as BindFs;
  const path =
    node instanceof BindFile
      ? node.hostPath
      : node instanceof BindDir
        ? node.hostPath
        : dir
          ? dir.pathOfName(name)
          : fail("ENOTSUP");
  const r = await fs.gofer.change({ op: "setattr", path, ...attrs }, fs.root);
  if (r.stat) node.adoptHostStat(r.stat);
}

/** The root of a volume: a directory, or the file of a file volume. */
export async function openVolumeRoot(
  gofer: GoferClient,
  root: number,
  dev: number,
  source: string,
  readOnly: boolean,
): Promise<BindDir | BindFile> {
  const r = await gofer.open(".", O_PATH, false, root);
  closeHostFd(r.fd);
  const fs = new BindFs(dev, source, readOnly, gofer, root, r.stat.dev);
  if ((r.stat.mode & S_IFMT) === S_IFDIR) return new BindDir(fs, r.stat, null, "/", true);
  if ((r.stat.mode & S_IFMT) === S_IFREG) return new BindFile(fs, r.stat, null, ".");
  return fail("ENOTSUP", `${source} is neither a directory nor a file`);
}
