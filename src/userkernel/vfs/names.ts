// The calls on names: mkdir, mknod, symlink, link, unlink, rmdir, rename (in the overlay,
// or on the host through the gofer for a volume).
import { fail } from "../errno.js";
import { VfsAttrs } from "./attrs.js";
import { BindDir, BindFile, hostPathOf } from "./bind.js";
import {
  AT_EMPTY_PATH,
  AT_REMOVEDIR,
  AT_SYMLINK_FOLLOW,
  PATH_MAX,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
} from "./flags.js";
import {
  type Ctx,
  DirInode,
  FifoInode,
  FileInode,
  GeneratedInode,
  type Inode,
  SpecialInode,
  SymlinkInode,
} from "./inode.js";
import { OpenDescriptionInode } from "./open-description.js";
import { checkPermission, checkSticky, MAY_EXEC, MAY_WRITE } from "./perm.js";
import { MagicLink } from "./proc.js";
import { S_IFCHR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK, S_ISGID } from "./stat.js";
import type { Parent } from "./walk.js";

export class VfsNames extends VfsAttrs {
  /** A parent ready for creating `last` in it: EEXIST if taken. */
  protected async freeName(ctx: Ctx, at: Inode | null, path: string): Promise<Parent> {
    const p = await this.parent(ctx, at, path);
    if (p.last === "") fail("EEXIST");
    checkPermission(ctx.cred, p.dir, MAY_EXEC);
    if (await this.child(p.dir, p.last)) fail("EEXIST");
    return p;
  }

  /** mkdir/mkdirat; `mode` with the umask applied. */
  async mkdir(ctx: Ctx, at: Inode | null, path: string, mode: number): Promise<void> {
    const p = await this.freeName(ctx, at, path);
    if (p.dir instanceof BindDir) {
      this.checkCreate(ctx, p.dir, p.last);
      const gid = this.newGid(ctx, p.dir);
      return p.dir.makeDir(ctx, p.last, (mode & 0o7777) | (p.dir.mode & S_ISGID), gid);
    }
    this.createIn(ctx, p.dir, p.last, (fs) => new DirInode(fs, mode & 0o7777, 0, 0, p.dir, p.last));
  }

  /** mknod/mknodat: regular files, FIFOs and sockets (device nodes: EPERM, the kernel has none). */
  async mknod(ctx: Ctx, at: Inode | null, path: string, mode: number, _dev = 0): Promise<void> {
    const type = mode & S_IFMT;
    if (type !== 0 && type !== S_IFREG && type !== S_IFIFO && type !== S_IFSOCK) {
      if (type === S_IFCHR || type === 0o060000) fail("EPERM");
      fail("EINVAL");
    }
    const p = await this.freeName(ctx, at, path);
    if (p.slash) fail("ENOENT");
    if (p.dir instanceof BindDir) {
      // A volume holds regular files only: a FIFO or socket node there would be the host's.
      if (type !== 0 && type !== S_IFREG) fail("EPERM");
      this.checkCreate(ctx, p.dir, p.last);
      (await p.dir.createFile(ctx, p.last, mode & 0o7777, this.newGid(ctx, p.dir))).release();
      return;
    }
    this.createIn(ctx, p.dir, p.last, (fs) =>
      type === 0 || type === S_IFREG
        ? new FileInode(fs, mode, 0, 0)
        : type === S_IFIFO
          ? new FifoInode(fs, type | (mode & 0o7777), 0, 0)
          : new SpecialInode(fs, type | (mode & 0o7777), 0, 0),
    );
  }

  /** symlink/symlinkat. */
  async symlink(ctx: Ctx, target: string, at: Inode | null, path: string): Promise<void> {
    if (target.length === 0) fail("ENOENT");
    if (target.length >= PATH_MAX) fail("ENAMETOOLONG");
    const p = await this.freeName(ctx, at, path);
    if (p.slash) fail("ENOENT");
    if (p.dir instanceof BindDir) {
      this.checkCreate(ctx, p.dir, p.last);
      return p.dir.makeSymlink(ctx, p.last, target, this.newGid(ctx, p.dir));
    }
    this.createIn(ctx, p.dir, p.last, (fs) => new SymlinkInode(fs, target, 0, 0));
  }

  /** link/linkat (flags: AT_SYMLINK_FOLLOW, AT_EMPTY_PATH). */
  async link(
    ctx: Ctx,
    oldAt: Inode | null,
    oldPath: string,
    newAt: Inode | null,
    newPath: string,
    flags = 0,
  ): Promise<void> {
    const old = await this.resolve(
      ctx,
      oldAt,
      oldPath,
      !!(flags & AT_SYMLINK_FOLLOW),
      !!(flags & AT_EMPTY_PATH),
    );
    if (old instanceof DirInode) fail("EPERM");
    const p = await this.freeName(ctx, newAt, newPath);
    if (p.slash) fail("ENOENT");
    if (old.fs !== p.dir.fs) fail("EXDEV");
    if (old instanceof MagicLink || old instanceof GeneratedInode || old instanceof OpenDescriptionInode)
      fail("EPERM");
    checkPermission(ctx.cred, p.dir, MAY_WRITE | MAY_EXEC);
    if (p.dir.fs.readOnly) fail("EROFS");
    if (old.nlink === 0) fail("ENOENT");
    if (p.dir instanceof BindDir) {
      // Only a file of the volume knows its host name.
      if (!(old instanceof BindFile) || !old.dir) fail("EPERM");
      const bfs = p.dir.bfs;
      await bfs.gofer.change({ op: "link", from: old.hostPath, to: p.dir.pathOfName(p.last) }, bfs.root);
      p.dir.modified();
      return;
    }
    p.dir.attach(p.last, old);
    old.nlink++;
    old.changed();
  }

  /** A removable name: its parent, the inode, after permission and sticky checks. */
  protected async victim(ctx: Ctx, p: Parent): Promise<Inode> {
    checkPermission(ctx.cred, p.dir, MAY_EXEC);
    const c = await this.child(p.dir, p.last);
    if (!c) fail("ENOENT");
    checkPermission(ctx.cred, p.dir, MAY_WRITE | MAY_EXEC);
    checkSticky(ctx.cred, p.dir, c);
    if (p.dir.fs.readOnly) fail("EROFS");
    if (p.dir.fileMounts?.has(p.last)) fail("EBUSY");
    return c;
  }

  /** The inode under a name, as the directory holds it (a mount point, not what covers it). */
  protected holder(dir: DirInode, name: string): Inode | undefined {
    return dir.children.get(name);
  }

  /** unlink/unlinkat (AT_REMOVEDIR makes it rmdir). */
  async unlink(ctx: Ctx, at: Inode | null, path: string, flags = 0): Promise<void> {
    if (flags & AT_REMOVEDIR) return this.rmdir(ctx, at, path);
    const p = await this.parent(ctx, at, path);
    if (p.last === "") fail("EISDIR");
    const c = await this.victim(ctx, p);
    if (c instanceof DirInode) fail("EISDIR");
    if (p.slash) fail("ENOTDIR");
    if (p.dir instanceof BindDir) {
      await p.dir.remove(p.last, false);
      unlinked(c);
      return;
    }
    p.dir.detach(p.last);
    unlinked(c);
  }

  async rmdir(ctx: Ctx, at: Inode | null, path: string): Promise<void> {
    const p = await this.parent(ctx, at, path);
    if (p.last === "") {
      // rmdir("x/.") is EINVAL, rmdir("x/..") ENOTEMPTY, rmdir("/") EBUSY.
      const parts = path.split("/").filter((s) => s.length > 0);
      const end = parts[parts.length - 1];
      fail(end === "." ? "EINVAL" : end === ".." ? "ENOTEMPTY" : "EBUSY");
    }
    const c = await this.victim(ctx, p);
    if (!(c instanceof DirInode)) fail("ENOTDIR");
    const held = this.holder(p.dir, p.last);
    if (c === this.root || (held instanceof DirInode && held.mounted) || c === ctx.root) fail("EBUSY");
    if (!(await c.isEmpty())) fail("ENOTEMPTY");
    if (p.dir instanceof BindDir) await p.dir.remove(p.last, true);
    else p.dir.detach(p.last);
    c.removed = true;
    c.nlink = 0;
    c.changed();
  }

  /** rename/renameat/renameat2 (RENAME_NOREPLACE, RENAME_EXCHANGE). */
  async rename(
    ctx: Ctx,
    oldAt: Inode | null,
    oldPath: string,
    newAt: Inode | null,
    newPath: string,
    flags = 0,
  ): Promise<void> {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) fail("EINVAL");
    if (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE) fail("EINVAL");
    const op = await this.parent(ctx, oldAt, oldPath);
    const np = await this.parent(ctx, newAt, newPath);
    if (op.last === "" || np.last === "") fail("EBUSY");
    const src = await this.victim(ctx, op);
    checkPermission(ctx.cred, np.dir, MAY_EXEC);
    const dst = await this.child(np.dir, np.last);
    if (src.fs !== np.dir.fs) fail("EXDEV");
    if ((op.slash || np.slash) && !(src instanceof DirInode)) fail("ENOTDIR");
    const srcHeld = this.holder(op.dir, op.last);
    const dstHeld = this.holder(np.dir, np.last);
    if ((srcHeld instanceof DirInode && srcHeld.mounted) || (dstHeld instanceof DirInode && dstHeld.mounted))
      fail("EBUSY");
    if (flags & RENAME_EXCHANGE) {
      if (!dst) fail("ENOENT");
    } else if (dst && flags & RENAME_NOREPLACE) fail("EEXIST");
    if (dst === src) return;
    checkPermission(ctx.cred, np.dir, MAY_WRITE | MAY_EXEC);
    if (dst) checkSticky(ctx.cred, np.dir, dst);
    if (np.dir.fileMounts?.has(np.last)) fail("EBUSY");
    // A directory may not move beneath itself.
    if (src instanceof DirInode)
      for (let d = np.dir; ; d = d.parent) {
        if (d === src) fail("EINVAL");
        if (d.parent === d) break;
      }
    if (dst instanceof DirInode && flags & RENAME_EXCHANGE && dst instanceof DirInode)
      for (let d = op.dir; ; d = d.parent) {
        if (d === dst) fail("EINVAL");
        if (d.parent === d) break;
      }
    if (op.dir instanceof BindDir && np.dir instanceof BindDir) {
      await this.renameOnHost(op.dir, op.last, np.dir, np.last, src, dst, flags);
      return;
    }
    if (flags & RENAME_EXCHANGE) {
      op.dir.detach(op.last);
      np.dir.detach(np.last);
      op.dir.attach(op.last, dst!);
      np.dir.attach(np.last, src);
      src.changed();
      dst!.changed();
      return;
    }
    if (dst) {
      if (src instanceof DirInode) {
        if (!(dst instanceof DirInode)) fail("ENOTDIR");
        if (!(await dst.isEmpty())) fail("ENOTEMPTY");
      } else if (dst instanceof DirInode) fail("EISDIR");
      np.dir.detach(np.last);
      if (dst instanceof DirInode) {
        dst.removed = true;
        dst.nlink = 0;
        dst.changed();
      } else unlinked(dst);
    }
    op.dir.detach(op.last);
    np.dir.attach(np.last, src);
    src.changed();
  }

  /** rename within a volume: the host renames, the tree follows (the same inodes, new names). */
  protected async renameOnHost(
    from: BindDir,
    fromName: string,
    to: BindDir,
    toName: string,
    src: Inode,
    dst: Inode | null,
    flags: number,
  ): Promise<void> {
    if (src instanceof DirInode && dst && !(flags & RENAME_EXCHANGE)) {
      if (!(dst instanceof DirInode)) fail("ENOTDIR");
      if (!(await dst.isEmpty())) fail("ENOTEMPTY");
    } else if (dst instanceof DirInode && !(flags & RENAME_EXCHANGE)) fail("EISDIR");
    const bfs = from.bfs;
    await bfs.gofer.change(
      { op: "rename", from: hostPathOf(src, from, fromName), to: to.pathOfName(toName), flags },
      bfs.root,
    );
    from.children.delete(fromName);
    to.children.delete(toName);
    if (flags & RENAME_EXCHANGE) {
      from.modified();
      to.modified();
      return;
    }
    if (dst instanceof DirInode) dst.removed = true;
    else if (dst) unlinked(dst);
    if (src instanceof DirInode && from !== to) from.nlink = Math.max(2, from.nlink - 1);
    from.modified();
    to.attach(toName, src);
    if (src instanceof BindFile) {
      src.dir = to;
      src.fname = toName;
    }
    src.changed();
  }
}

function unlinked(inode: Inode): void {
  if (inode instanceof FileInode) inode.unlinked();
  else {
    inode.nlink = Math.max(0, inode.nlink - 1);
    inode.changed();
  }
}
