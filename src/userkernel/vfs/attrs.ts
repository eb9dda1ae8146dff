// The attribute calls: stat, readlink, access, chmod, chown, truncate, utimens, statfs.
import { fail } from "../errno.js";
import { BindFs, setHostAttrs } from "./bind.js";
import { AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW, F_OK, NAME_MAX, type TimeSpec, W_OK } from "./flags.js";
import { type Ctx, DeviceInode, DirInode, FileInode, type Inode, SymlinkInode } from "./inode.js";
import { VfsOpen } from "./open.js";
import { checkOwner, checkPermission, inGroup, MAY_WRITE } from "./perm.js";
import { nowNs, S_IFMT, S_IFREG, S_ISGID, S_ISUID, type Stat, type StatFs } from "./stat.js";

// f_type values of statfs, as Linux's <linux/magic.h> numbers them.
const TMPFS_MAGIC = 0x01021994;
const FS_MAGIC: Record<string, number> = {
  tmpfs: TMPFS_MAGIC,
  proc: 0x9fa0,
  overlay: 0x794c7630,
  pipefs: 0x50495045,
};
const ST_RDONLY = 1;
const ST_RELATIME = 4096;

export class VfsAttrs extends VfsOpen {
  /** stat/lstat/fstatat/statx (flags: AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH). */
  async stat(ctx: Ctx, at: Inode | null, path: string, flags = 0): Promise<Stat> {
    const inode = await this.resolve(
      ctx,
      at,
      path,
      !(flags & AT_SYMLINK_NOFOLLOW),
      !!(flags & AT_EMPTY_PATH),
    );
    return inode.stat();
  }

  /** readlink/readlinkat; with AT_EMPTY_PATH semantics when path is "" and `at` is a symlink. */
  async readlink(ctx: Ctx, at: Inode | null, path: string): Promise<string> {
    const inode = await this.resolve(ctx, at, path, false, path === "" && at !== null);
    if (!(inode instanceof SymlinkInode)) fail("EINVAL");
    return inode.readTarget(ctx);
  }

  /** access/faccessat: `mode` of R_OK|W_OK|X_OK (F_OK: existence only). */
  async access(ctx: Ctx, at: Inode | null, path: string, mode: number, flags = 0): Promise<void> {
    if (mode & ~7) fail("EINVAL");
    const inode = await this.resolve(
      ctx,
      at,
      path,
      !(flags & AT_SYMLINK_NOFOLLOW),
      !!(flags & AT_EMPTY_PATH),
    );
    if (mode === F_OK) return;
    checkPermission(ctx.cred, inode, mode);
    if (mode & W_OK && inode.fs.readOnly && !(inode instanceof DeviceInode)) fail("EROFS");
  }

  /** chmod/fchmod/fchmodat. */
  async chmod(ctx: Ctx, at: Inode | null, path: string, mode: number, flags = 0): Promise<void> {
    const inode = await this.resolve(
      ctx,
      at,
      path,
      !(flags & AT_SYMLINK_NOFOLLOW),
      !!(flags & AT_EMPTY_PATH),
    );
    if (inode instanceof SymlinkInode) fail("ENOTSUP");
    await this.setMode(ctx, inode, mode);
  }

  async setMode(ctx: Ctx, inode: Inode, mode: number): Promise<void> {
    checkOwner(ctx.cred, inode);
    if (inode.fs.readOnly) fail("EROFS");
    let bits = mode & 0o7777;
    if (ctx.cred.uid !== 0 && !inGroup(ctx.cred, inode.gid)) bits &= ~S_ISGID;
    if (inode.fs instanceof BindFs) return setHostAttrs(inode, null, "", { mode: bits });
    inode.mode = (inode.mode & S_IFMT) | bits;
    inode.changed();
  }

  /** chown/lchown/fchown/fchownat; -1 leaves an id unchanged. */
  async chown(ctx: Ctx, at: Inode | null, path: string, uid: number, gid: number, flags = 0): Promise<void> {
    const inode = await this.resolve(
      ctx,
      at,
      path,
      !(flags & AT_SYMLINK_NOFOLLOW),
      !!(flags & AT_EMPTY_PATH),
    );
    await this.setOwner(ctx, inode, uid, gid);
  }

  async setOwner(ctx: Ctx, inode: Inode, uid: number, gid: number): Promise<void> {
    if (inode.fs.readOnly) fail("EROFS");
    const newUid = uid === -1 || uid === 0xffffffff ? inode.uid : uid;
    const newGid = gid === -1 || gid === 0xffffffff ? inode.gid : gid;
    if (ctx.cred.uid !== 0) {
      if (newUid !== inode.uid || ctx.cred.uid !== inode.uid) fail("EPERM");
      if (newGid !== inode.gid && !inGroup(ctx.cred, newGid)) fail("EPERM");
    }
    // The host drops the set-id bits itself.
    if (inode.fs instanceof BindFs) return setHostAttrs(inode, null, "", { uid: newUid, gid: newGid });
    if ((inode.mode & S_IFMT) === S_IFREG && (newUid !== inode.uid || newGid !== inode.gid || uid !== -1)) {
      // Linux drops set-id bits on a chown of a regular file (setgid only if group-executable).
      inode.mode &= ~S_ISUID;
      if (inode.mode & 0o010) inode.mode &= ~S_ISGID;
    }
    inode.uid = newUid;
    inode.gid = newGid;
    inode.changed();
  }

  /** truncate(2) by path (ftruncate is the description's truncate()). */
  async truncate(ctx: Ctx, at: Inode | null, path: string, length: number): Promise<void> {
    if (length < 0) fail("EINVAL");
    const inode = await this.resolve(ctx, at, path, true);
    if (inode instanceof DirInode) fail("EISDIR");
    if (!(inode instanceof FileInode)) fail("EINVAL");
    checkPermission(ctx.cred, inode, MAY_WRITE);
    if (inode.fs.readOnly) fail("EROFS");
    await inode.copyUp();
    inode.truncate(length);
  }

  /** utimensat/futimens (AT_EMPTY_PATH with path ""), utimes. */
  async utimens(
    ctx: Ctx,
    at: Inode | null,
    path: string,
    atime: TimeSpec,
    mtime: TimeSpec,
    flags = 0,
  ): Promise<void> {
    const inode = await this.resolve(ctx, at, path, !(flags & AT_SYMLINK_NOFOLLOW), path === "");
    await this.setTimes(ctx, inode, atime, mtime);
  }

  async setTimes(ctx: Ctx, inode: Inode, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
    if (atime === "omit" && mtime === "omit") return;
    if (inode.fs.readOnly) fail("EROFS");
    const toNow = (atime === "now" || atime === "omit") && (mtime === "now" || mtime === "omit");
    if (ctx.cred.uid !== 0 && ctx.cred.uid !== inode.uid) {
      if (!toNow) fail("EPERM");
      checkPermission(ctx.cred, inode, MAY_WRITE);
    }
    const now = nowNs();
    if (inode.fs instanceof BindFs) {
      const ns = (t: TimeSpec) => (t === "omit" ? undefined : String(t === "now" ? now : t));
      const a = ns(atime);
      const m = ns(mtime);
      return setHostAttrs(inode, null, "", { ...(a ? { atimeNs: a } : {}), ...(m ? { mtimeNs: m } : {}) });
    }
    if (atime !== "omit") inode.atimeNs = atime === "now" ? now : atime;
    if (mtime !== "omit") inode.mtimeNs = mtime === "now" ? now : mtime;
    inode.ctimeNs = now;
  }

  /** statfs/fstatfs: the file system `inode` lives on (pass `inodeOf(desc)` for fstatfs). */
  statfs(inode: Inode): StatFs {
    const fs = inode.fs;
    const bsize = 4096;
    const total = Math.floor(Math.min(fs.limit, Number.MAX_SAFE_INTEGER) / bsize);
    const free = Math.max(0, total - Math.ceil(fs.used / bsize));
    const readOnly = fs.readOnly ? ST_RDONLY : 0;
    return {
      type: FS_MAGIC[fs.type] ?? TMPFS_MAGIC,
      bsize,
      blocks: fs.type === "proc" ? 0 : total,
      bfree: fs.type === "proc" ? 0 : free,
      bavail: fs.type === "proc" ? 0 : free,
      files: 1 << 20,
      ffree: 1 << 20,
      fsid: [fs.dev & 0xffffffff, 0],
      namelen: NAME_MAX,
      frsize: bsize,
      flags: readOnly | ST_RELATIME,
    };
  }

  /** statfs(2) by path. */
  async statfsPath(ctx: Ctx, at: Inode | null, path: string): Promise<StatFs> {
    return this.statfs(await this.resolve(ctx, at, path, true));
  }
}
