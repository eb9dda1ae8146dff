// open(2) and execve's open: the last component (O_CREAT, O_EXCL, O_NOFOLLOW, symlinks and
// /proc magic links), the access checks, and the description each kind of inode opens as;
// with the checks and ownership rules of creating a name, which the name calls share.

import {
  O_ACCMODE,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOCTTY,
  O_NOFOLLOW,
  O_PATH,
  O_TMPFILE,
  O_TRUNC,
} from "../../sys/file.js";
import { fail } from "../errno.js";
import type { FileDescription } from "../kernel/fdtable.js";
import { BindDir } from "./bind.js";
import { canWrite, DirFile, PathFile, RegularFile, SnapshotFile, VfsFile } from "./file.js";
import { MAXSYMLINKS, NAME_MAX } from "./flags.js";
import {
  type Ctx,
  DeviceInode,
  DirInode,
  FifoInode,
  FileInode,
  type Fs,
  GeneratedInode,
  type Inode,
  OpenableInode,
  SymlinkInode,
} from "./inode.js";
import { OpenDescriptionInode } from "./open-description.js";
import { checkPermission, MAY_EXEC, MAY_READ, MAY_WRITE } from "./perm.js";
import { openFifo } from "./pipe.js";
import { MagicLink } from "./proc.js";
import { S_ISGID } from "./stat.js";
import { type Parent, PathWalk, type Walk } from "./walk.js";

export class VfsOpen extends PathWalk {
  /**
   * open/openat/creat. `mode` is the creation mode with the umask already applied.
   * Returns the description to install; O_CLOEXEC is the fd table's business.
   */
  async open(ctx: Ctx, at: Inode | null, path: string, flags: number, mode = 0): Promise<FileDescription> {
    if ((flags & O_TMPFILE) === O_TMPFILE) fail("ENOTSUP", "O_TMPFILE");
    if (flags & O_PATH) flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    const w = { links: 0 };
    const start = await this.walkParent(ctx, this.startOf(ctx, at, path), path, w);
    const { inode, p, created, viaMagic } = await this.openLast(ctx, start, w, flags, mode);
    const d = await this.openInode(ctx, inode, flags, created);
    if (d instanceof VfsFile) d.path = viaMagic ?? this.nameOf(inode, p);
    return d;
  }

  /**
   * The last component of an open: follows symlinks (resolving each target from the link's
   * directory), creates with O_CREAT, and reports where the file was finally found.
   */
  protected async openLast(
    ctx: Ctx,
    start: Parent,
    w: Walk,
    flags: number,
    mode: number,
  ): Promise<{ inode: Inode; p: Parent; created: boolean; viaMagic?: string | undefined }> {
    let p = start;
    for (;;) {
      if (p.last === "") {
        if (flags & O_CREAT) fail("EISDIR");
        return { inode: p.dir, p, created: false };
      }
      checkPermission(ctx.cred, p.dir, MAY_EXEC);
      const c = await this.child(p.dir, p.last);
      if (!c) {
        if (!(flags & O_CREAT)) fail("ENOENT");
        if (p.slash) fail("EISDIR");
        if (p.dir instanceof BindDir) {
          this.checkCreate(ctx, p.dir, p.last);
          const inode = await p.dir.createFile(ctx, p.last, mode, this.newGid(ctx, p.dir));
          return { inode, p, created: true };
        }
        const inode = this.createIn(ctx, p.dir, p.last, (f) => new FileInode(f, mode, 0, 0));
        return { inode, p, created: true };
      }
      if ((flags & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL)) fail("EEXIST");
      if (c instanceof SymlinkInode && !p.slash && flags & O_NOFOLLOW) {
        if (flags & O_PATH) return { inode: c, p, created: false };
        fail("ELOOP");
      }
      if (c instanceof MagicLink) {
        if (++w.links > MAXSYMLINKS) fail("ELOOP");
        const through = c.description();
        const viaMagic = through instanceof VfsFile ? through.path : undefined;
        return { inode: this.magicTarget(c), p, created: false, viaMagic };
      }
      if (c instanceof SymlinkInode) {
        if (++w.links > MAXSYMLINKS) fail("ELOOP");
        const target = c.readTarget(ctx);
        if (target.length === 0) fail("ENOENT");
        const slash = p.slash;
        p = await this.walkParent(ctx, p.dir, target, w);
        p.slash ||= slash;
        continue;
      }
      if (p.slash && !(c instanceof DirInode)) fail("ENOTDIR");
      return { inode: c, p, created: false };
    }
  }

  /** The path an opened file is known by in /proc/self/fd (undefined once unreachable). */
  protected nameOf(inode: Inode, p: Parent): string | undefined {
    try {
      if (inode instanceof DirInode) return this.pathOf(inode);
      const dir = this.pathOf(p.dir);
      return dir === "/" ? `/${p.last}` : `${dir}/${p.last}`;
    } catch {
      return undefined;
    }
  }

  /**
   * execve's open: a regular file the caller may execute, opened for reading (EACCES for
   * a directory, a device or a file without execute permission, as Linux answers).
   */
  async openExec(ctx: Ctx, at: Inode | null, path: string): Promise<RegularFile> {
    const w = { links: 0 };
    const start = await this.walkParent(ctx, this.startOf(ctx, at, path), path, w);
    const { inode, p } = await this.openLast(ctx, start, w, 0, 0);
    if (!(inode instanceof FileInode))
      fail("EACCES", inode instanceof DirInode ? "is a directory" : "not a regular file");
    checkPermission(ctx.cred, inode, MAY_EXEC);
    // Execute permission is enough: a mode 0711 program runs for users who cannot read it.
    const d = (await this.openInode(ctx, inode, 0, true)) as RegularFile;
    d.path = this.nameOf(inode, p);
    return d;
  }

  /**
   * Open an inode already found. `checked`: access was already decided (the creator of a
   * file may open it whatever its mode; execve needs execute permission, not read).
   */
  protected async openInode(
    ctx: Ctx,
    inode: Inode,
    openFlags: number,
    checked: boolean,
  ): Promise<FileDescription> {
    // F_GETFL shows the status flags only: creation flags and O_CLOEXEC are not kept.
    const flags = openFlags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC | O_TRUNC);
    const trunc = (openFlags & O_TRUNC) !== 0;
    const acc = flags & O_ACCMODE;
    if (acc === O_ACCMODE && !(flags & O_PATH)) fail("EINVAL");
    if (flags & O_DIRECTORY && !(inode instanceof DirInode)) fail("ENOTDIR");
    if (flags & O_PATH) return new PathFile(inode, flags);
    const write = canWrite(flags);
    if (inode instanceof DirInode) {
      if (write || trunc || openFlags & O_CREAT) fail("EISDIR");
      checkPermission(ctx.cred, inode, MAY_READ);
      return new DirFile(inode, flags, this.dotdot(ctx, inode));
    }
    if (inode instanceof SymlinkInode) fail("ELOOP");
    if (!checked) {
      const need = (acc === 0 || acc === 2 ? MAY_READ : 0) | (write || trunc ? MAY_WRITE : 0);
      checkPermission(ctx.cred, inode, need);
    }
    // Neither a proc setting (comm), a proc file that opens its own object (mem) nor a
    // description reopened through /proc/<pid>/fd (a pipe) is content of the read-only proc fs.
    const ownObject =
      (inode instanceof GeneratedInode && inode.store !== undefined) ||
      inode instanceof OpenableInode ||
      inode instanceof OpenDescriptionInode;
    if (write && inode.fs.readOnly && !ownObject) fail("EROFS");
    if (inode instanceof OpenableInode) return inode.opener(inode, flags);
    if (inode instanceof FileInode) {
      if (write || trunc) await inode.copyUp();
      await inode.acquire();
      const f = new RegularFile(inode, flags);
      if (trunc && inode.size() > 0) inode.truncate(0);
      return f;
    }
    if (inode instanceof GeneratedInode) {
      // Opening for writing is a permission question (root may); a file without a store then
      // fails each write with EIO, as Linux's proc files without a write operation do.
      return new SnapshotFile(inode, flags, inode.generate(ctx), ctx);
    }
    if (inode instanceof DeviceInode) {
      if (!inode.driver) fail("ENXIO");
      return inode.driver(flags);
    }
    if (inode instanceof OpenDescriptionInode) return inode.reopen(flags);
    if (inode instanceof FifoInode) return openFifo(inode, flags);
    return fail("ENXIO");
  }

  /** The checks creating a name in `dir` needs. */
  protected checkCreate(ctx: Ctx, dir: DirInode, name: string): void {
    if (name.length > NAME_MAX) fail("ENAMETOOLONG");
    checkPermission(ctx.cred, dir, MAY_WRITE | MAY_EXEC);
    if (dir.removed) fail("ENOENT");
    if (dir.fs.readOnly) fail("EROFS");
  }

  /** The group a new inode of `dir` gets: a setgid directory hands its own down. */
  protected newGid(ctx: Ctx, dir: DirInode): number {
    return dir.mode & S_ISGID ? dir.gid : ctx.cred.gid;
  }

  /** Make a new inode under `dir` after the checks creating needs. */
  protected createIn<T extends Inode>(ctx: Ctx, dir: DirInode, name: string, make: (fs: Fs) => T): T {
    this.checkCreate(ctx, dir, name);
    const node = make(dir.fs);
    node.uid = ctx.cred.uid;
    // A setgid directory hands its group (and, to directories, the bit) down.
    node.gid = dir.mode & S_ISGID ? dir.gid : ctx.cred.gid;
    if (node instanceof DirInode && dir.mode & S_ISGID) node.mode |= S_ISGID;
    dir.attach(name, node);
    return node;
  }
}
