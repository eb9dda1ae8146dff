// The VFS proper: the mount table, the path walk (Linux's namei rules) and every
// path-based operation the file syscalls need. See index.ts for how the syscalls use it.
import * as os from "node:os";
import { MoatError } from "../../spec/errors.js";
import { fail } from "../errno.js";
import type { GoferClient } from "../gofer/client.js";
import type { FileDescription } from "../kernel/fdtable.js";
import { type MemoryFigures, memoryFigures } from "../mm/usage.js";
import { BindDir, BindFile, BindFs, hostPathOf, openVolumeRoot, setHostAttrs } from "./bind.js";
import { makeDevFs } from "./dev.js";
import { canWrite, DirFile, PathFile, RegularFile, SnapshotFile, VfsFile } from "./file.js";
import {
  type Ctx,
  DeviceInode,
  DirInode,
  FifoInode,
  FileInode,
  Fs,
  GeneratedInode,
  Inode,
  SpecialInode,
  SymlinkInode,
} from "./inode.js";
import { openImageRoot } from "./overlay.js";
import { checkOwner, checkPermission, checkSticky, inGroup, MAY_EXEC, MAY_READ, MAY_WRITE } from "./perm.js";
import { makePipe, openFifo, PipeReader, PipeWriter } from "./pipe.js";
import { MagicLink, makeProcFs, type ProcessSource } from "./proc.js";
import {
  makedev,
  nowNs,
  S_IFCHR,
  S_IFIFO,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  S_ISGID,
  S_ISUID,
  type Stat,
  type StatFs,
} from "./stat.js";

export const PATH_MAX = 4096;
export const NAME_MAX = 255;
/** Linux's limit on symlinks followed in one lookup. */
export const MAXSYMLINKS = 40;

// The open flags are Linux's own numbers: the guest passes them in, the host's are the same.
export {
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_TMPFILE,
  O_TRUNC,
} from "../../sys/file.js";

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

export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_SYMLINK_FOLLOW = 0x400;
export const AT_EACCESS = 0x200;
export const AT_EMPTY_PATH = 0x1000;

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

export const F_OK = 0;
export const X_OK = 1;
export const W_OK = 2;
export const R_OK = 4;

/** utimensat's per-time choices. */
export type TimeSpec = bigint | "now" | "omit";

/** The symlink budget of one lookup (shared by the nested walks a symlink causes). */
interface Walk {
  links: number;
}

/** A walk that stopped before the last component. */
interface Parent {
  dir: DirInode;
  /** "" when the path named the start directory itself ("/", or "." style endings). */
  last: string;
  /** The path ended in "/": the last component must be a directory. */
  slash: boolean;
}

export interface MountInfo {
  path: string;
  fs: Fs;
  /** A directory, or the file of a file bind mount. */
  root: Inode;
  options: string;
  /** The directory it covers (none for "/" and file bind mounts). */
  point?: DirInode;
  /** One of the kernel's own mounts made at boot (/proc, /dev, /dev/shm, /tmp). */
  builtin?: boolean;
}

/** What a tmpfs mount may set (mount(8)'s size= and mode=, and ro). */
export interface TmpfsOptions {
  mode?: number;
  /** Most bytes of file content (ENOSPC beyond). */
  size?: number;
  readOnly?: boolean;
}

export interface VfsOptions {
  /** The gofer serving the rootfs. */
  gofer: GoferClient;
  /** Processes for /proc (the kernel's task list); none until set. */
  processes?: ProcessSource;
  /** /proc/version's line. */
  version?: string;
  /** Most bytes of file content the overlay's upper layer and each tmpfs may hold (default: half the RAM). */
  memoryLimit?: number;
  /** The sandbox's memory for /proc/meminfo (default: the host's). */
  memory?: () => MemoryFigures;
  /** The real-time clock at boot, seconds since the epoch (default: now). */
  bootRealtimeS?: number;
}

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

const NO_PROCESSES: ProcessSource = { get: () => undefined, pids: () => [] };

/**
 * A sandbox's file system tree: "/" is the image (read-only, through the gofer) under an
 * in-memory overlay; /tmp and /dev/shm are tmpfs; /dev holds the kernel's devices; /proc is
 * synthetic. Each operation takes the caller's Ctx (credentials, cwd, pid) and, for *at
 * calls, the inode of the dirfd (null for AT_FDCWD).
 */
export class Vfs {
  readonly mounts: MountInfo[] = [];
  private nextMinor = 40;
  processes: ProcessSource;
  private readonly memoryLimit: number;

  private constructor(
    readonly root: DirInode,
    opts: VfsOptions,
  ) {
    this.processes = opts.processes ?? NO_PROCESSES;
    this.memoryLimit = opts.memoryLimit ?? Math.floor(os.totalmem() / 2);
    root.fs.limit = this.memoryLimit;
  }

  /** Build the tree: the image at "/", then tmpfs, devices and proc on their mount points. */
  static async create(opts: VfsOptions): Promise<Vfs> {
    try {
      return await Vfs.build(opts);
    } catch (e) {
      throw new MoatError(
        "EIO",
        `cannot set up the container's file systems from its rootfs (${(e as Error).message}); check that the bundle's rootfs is an unpacked image`,
        { cause: e },
      );
    }
  }

  private static async build(opts: VfsOptions): Promise<Vfs> {
    const root = await openImageRoot(opts.gofer, makedev(0, 39));
    const vfs = new Vfs(root, opts);
    vfs.mounts.push({ path: "/", fs: root.fs, root, options: "rw,relatime" });
    const admin: Ctx = { cred: { uid: 0, gid: 0 }, cwd: root, pid: 0 };
    await vfs.mountNew(
      admin,
      "/proc",
      (fs) =>
        makeProcFs(fs, {
          processes: () => vfs.processes,
          mounts: () => vfs.mountsText(),
          mountinfo: () => vfs.mountinfoText(),
          memory: opts.memory ?? (() => memoryFigures(undefined)),
          bootRealtimeS: opts.bootRealtimeS ?? Date.now() / 1000,
          version: opts.version ?? "Linux version 6.1.0-moat (moat@userkernel) #1 SMP moat userkernel",
          bootNs: process.hrtime.bigint(),
        }),
      "proc",
      "proc",
      true,
      "ro,nosuid,nodev,noexec",
    );
    await vfs.mountNew(
      admin,
      "/dev",
      (fs) => makeDevFs(fs),
      "tmpfs",
      "devtmpfs",
      false,
      "rw,nosuid,mode=755",
    );
    await vfs.mountTmpfs(admin, "/dev/shm", 0o1777);
    await vfs.mountTmpfs(admin, "/tmp", 0o1777);
    return vfs;
  }

  /**
   * The runtime spec's root.readonly: from now on every change under "/" fails with EROFS,
   * as mount(2) with MS_RDONLY makes it. Mounts on it (/proc, /dev, /tmp, tmpfs and
   * volumes) are file systems of their own and stay as they were.
   */
  makeRootReadOnly(): void {
    const root = this.mounts.find((m) => m.path === "/");
    if (!root) return;
    root.fs.readOnly = true;
    root.options = root.options.replace(/^rw\b/, "ro");
  }

  /** A context for the kernel itself (root, cwd "/"). */
  adminCtx(pid = 1): Ctx {
    return { cred: { uid: 0, gid: 0 }, cwd: this.root, pid };
  }

  /** Mount an empty tmpfs on `path` (made in the overlay if the image lacks it). */
  async mountTmpfs(ctx: Ctx, path: string, mode: number | TmpfsOptions = 0o755): Promise<DirInode> {
    const o: TmpfsOptions = typeof mode === "number" ? { mode } : mode;
    // Options mean a config's tmpfs: its destination follows the image's symlinks (see mountNew).
    const own =
      typeof mode === "number"
        ? undefined
        : new Fs(makedev(0, this.nextMinor++), "tmpfs", "tmpfs", o.readOnly ?? false);
    if (own) own.limit = Math.min(o.size ?? this.memoryLimit, this.memoryLimit);
    return this.mountNew(
      ctx,
      path,
      (fs) => new DirInode(fs, o.mode ?? 0o1777, 0, 0, null, "tmpfs"),
      "tmpfs",
      "tmpfs",
      o.readOnly ?? false,
      `${o.readOnly ? "ro" : "rw"},nosuid,nodev${o.size !== undefined ? `,size=${Math.ceil(o.size / 1024)}k` : ""}`,
      own,
    );
  }

  /**
   * Bind-mount root `root` of `gofer` (a host directory or file from the container's config)
   * at `path`. The destination is resolved in the container (its symlinks followed inside
   * the VFS, never on the host); a missing one is made in the overlay, as runc makes it:
   * a directory for a directory, an empty file for a file.
   */
  async mountVolume(
    ctx: Ctx,
    path: string,
    gofer: GoferClient,
    root: number,
    source: string,
    readOnly: boolean,
  ): Promise<void> {
    const vol = await openVolumeRoot(gofer, root, makedev(0, this.nextMinor++), source, readOnly);
    const options = readOnly ? "ro,relatime" : "rw,relatime";
    if (vol instanceof BindDir) {
      await this.mountNew(ctx, path, () => vol, vol.fs.type, source, readOnly, options, vol.fs);
      return;
    }
    const { dir, name } = await this.fileMountPoint(ctx, path);
    dir.fileMounts ??= new Map();
    dir.fileMounts.set(name, vol);
    const at = this.pathOf(dir);
    this.mounts.push({ path: at === "/" ? `/${name}` : `${at}/${name}`, fs: vol.fs, root: vol, options });
  }

  /** The directory and name a file mount covers: made (with its parents) if missing, symlinks followed. */
  private async fileMountPoint(ctx: Ctx, path: string): Promise<{ dir: DirInode; name: string }> {
    const w = { links: 0 };
    let dir = this.rootOf(ctx);
    let rest = path;
    for (;;) {
      const cut = rest.lastIndexOf("/");
      dir = await this.mkdirAll(ctx, dir, cut < 0 ? "" : rest.slice(0, cut + 1), w);
      const name = rest.slice(cut + 1);
      if (name === "" || name === "." || name === "..")
        fail("EISDIR", `${path} is a directory: a file cannot be mounted on it`);
      const c = await this.child(dir, name);
      if (c instanceof SymlinkInode && !(c instanceof MagicLink)) {
        // The image's symlink is followed as the container would, from where it stands.
        if (++w.links > MAXSYMLINKS) fail("ELOOP", path);
        rest = c.readTarget(ctx);
        continue;
      }
      if (c instanceof DirInode) fail("EISDIR", `${path} is a directory: a file cannot be mounted on it`);
      if (!c) {
        const made = await this.open(ctx, dir, name, O_CREAT | O_EXCL | 1, 0o644);
        made.release?.();
      }
      return { dir, name };
    }
  }

  /** A config mount's directory: made (with its parents) where the image's symlinks lead. */
  private async mountPoint(ctx: Ctx, path: string): Promise<DirInode> {
    try {
      return await this.mkdirAll(ctx, this.rootOf(ctx), path, { links: 0 });
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOTDIR") throw e;
      // An image with a file where the mount point belongs: the overlay replaces it.
      await this.unlink(ctx, null, path);
      await this.mkdir(ctx, null, path, 0o755);
      const made = await this.resolve(ctx, null, path, true);
      if (!(made instanceof DirInode)) fail("ENOTDIR", path);
      return made;
    }
  }

  /**
   * mkdir -p from `start`, in the container's namespace: the image's symlinks are followed
   * (inside the VFS: ".." stops at the root, absolute targets start from it) and missing
   * directories are made where they lead, as runc makes a mount's destination.
   */
  private async mkdirAll(ctx: Ctx, start: DirInode, path: string, w: Walk): Promise<DirInode> {
    let dir = path.startsWith("/") ? this.rootOf(ctx) : start;
    for (const name of path.split("/")) {
      if (name === "" || name === ".") continue;
      if (name === "..") {
        dir = this.dotdot(ctx, dir);
        continue;
      }
      let c = await this.child(dir, name);
      if (c instanceof MagicLink) c = this.magicTarget(c);
      else if (c instanceof SymlinkInode) {
        if (++w.links > MAXSYMLINKS) fail("ELOOP", path);
        c = await this.mkdirAll(ctx, dir, c.readTarget(ctx), w);
      }
      if (!c) {
        await this.mkdir(ctx, dir, name, 0o755);
        c = await this.child(dir, name);
      }
      if (!(c instanceof DirInode)) fail("ENOTDIR", `${name} in ${path} is not a directory`);
      dir = c;
    }
    return dir;
  }

  private async mountNew(
    ctx: Ctx,
    path: string,
    make: (fs: Fs) => DirInode,
    type: string,
    source: string,
    readOnly: boolean,
    options: string,
    own?: Fs,
  ): Promise<DirInode> {
    const fs = own ?? new Fs(makedev(0, this.nextMinor++), type, source, readOnly);
    if (!own) fs.limit = this.memoryLimit;
    const root = make(fs);
    let found: DirInode;
    if (own) {
      // A config mount: made where the image's symlinks lead, inside the container, as runc does.
      found = await this.mountPoint(ctx, path);
    } else {
      // The kernel's own mounts (/proc, /dev, /tmp...) replace whatever the image has there.
      let node: Inode;
      try {
        node = await this.resolve(ctx, null, path, true);
      } catch (e) {
        if ((e as { code?: string }).code !== "ENOENT") throw e;
        // A dangling symlink in the mount point's place goes; a missing directory is made.
        await this.unlink(ctx, null, path).catch(() => undefined);
        await this.mkdir(ctx, null, path, 0o755);
        node = await this.resolve(ctx, null, path, true);
      }
      if (!(node instanceof DirInode)) {
        // An image with a file where a mount point belongs: the overlay replaces it.
        await this.unlink(ctx, null, path);
        await this.mkdir(ctx, null, path, 0o755);
        node = await this.resolve(ctx, null, path, true);
        if (!(node instanceof DirInode)) fail("ENOTDIR", path);
      }
      found = node;
    }
    // A config's mount on one of the kernel's own, still empty (the default spec's /tmp and
    // /dev/shm), takes its place rather than stacking over it: each appears once in
    // /proc/mounts, with the config's options, as under runc.
    const replaced = this.mounts.findIndex((m) => m.builtin && m.root === found && m.point);
    if (replaced >= 0 && found.children.size === 0) {
      const old = this.mounts[replaced]!;
      this.mounts.splice(replaced, 1);
      found = old.point!;
      found.mounted = null;
    }
    let point: DirInode = found;
    while (point.mounted) point = point.mounted;
    point.mounted = root;
    root.parent = point.parent;
    root.name = point.name;
    this.mounts.push({ path: this.pathOf(point), fs, root, options, point, builtin: !own });
    return root;
  }

  /** /proc/mounts. */
  mountsText(): string {
    return this.mounts.map((m) => `${m.fs.source} ${m.path} ${m.fs.type} ${m.options} 0 0\n`).join("");
  }

  /** /proc/<pid>/mountinfo (proc(5)): ids, parent ids, device, root, point, options, type, source. */
  mountinfoText(): string {
    const FIRST_ID = 20;
    const within = (path: string, parent: string): boolean =>
      parent === "/" ? path !== "/" : path.startsWith(`${parent}/`);
    return this.mounts
      .map((m, i) => {
        let parent = FIRST_ID + i;
        for (let j = i - 1; j >= 0; j--) {
          if (within(m.path, this.mounts[j]!.path)) {
            parent = FIRST_ID + j;
            break;
          }
        }
        const dev = m.fs.dev;
        const devText = `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;
        const ro = m.options.split(",").includes("ro") ? "ro" : "rw";
        return `${FIRST_ID + i} ${parent} ${devText} / ${m.path} ${m.options} - ${m.fs.type} ${m.fs.source} ${ro}\n`;
      })
      .join("");
  }

  // ---------------------------------------------------------------- the walk

  private rootOf(ctx: Ctx): DirInode {
    return ctx.root ?? this.root;
  }

  /** Where a relative path starts: the dirfd's inode, or the cwd. */
  private startOf(ctx: Ctx, at: Inode | null, path: string): DirInode {
    if (path.startsWith("/")) return this.rootOf(ctx);
    if (at === null) return ctx.cwd;
    if (!(at instanceof DirInode)) fail("ENOTDIR");
    return at;
  }

  /** A child, with mounts crossed; null if there is none. */
  private async child(dir: DirInode, name: string): Promise<Inode | null> {
    const covered = dir.fileMounts?.get(name);
    if (covered) return covered;
    const c = dir.cached(name);
    let n = c === undefined ? await dir.lookup(name) : c;
    while (n instanceof DirInode && n.mounted) n = n.mounted;
    return n;
  }

  private dotdot(ctx: Ctx, dir: DirInode): DirInode {
    if (dir === this.rootOf(ctx)) return dir;
    let p = dir.parent;
    while (p.mounted) p = p.mounted;
    return p;
  }

  /** Resolve everything but the last component. */
  private async walkParent(ctx: Ctx, start: DirInode, path: string, w: Walk): Promise<Parent> {
    if (path.length === 0) fail("ENOENT");
    if (path.length >= PATH_MAX) fail("ENAMETOOLONG");
    let dir = path.startsWith("/") ? this.rootOf(ctx) : start;
    const parts = path.split("/").filter((p) => p.length > 0);
    const slash = path.endsWith("/");
    if (parts.length === 0) return { dir, last: "", slash };
    for (let i = 0; i < parts.length - 1; i++) dir = await this.step(ctx, dir, parts[i]!, w);
    const last = parts[parts.length - 1]!;
    if (last.length > NAME_MAX) fail("ENAMETOOLONG");
    if (last === ".") return { dir, last: "", slash: true };
    if (last === "..") {
      checkPermission(ctx.cred, dir, MAY_EXEC);
      return { dir: this.dotdot(ctx, dir), last: "", slash: true };
    }
    return { dir, last, slash };
  }

  /** One intermediate component: it must end up a directory we may search. */
  private async step(ctx: Ctx, dir: DirInode, name: string, w: Walk): Promise<DirInode> {
    checkPermission(ctx.cred, dir, MAY_EXEC);
    if (name.length > NAME_MAX) fail("ENAMETOOLONG");
    if (name === ".") return dir;
    if (name === "..") return this.dotdot(ctx, dir);
    let c = await this.child(dir, name);
    if (!c) fail("ENOENT");
    if (c instanceof SymlinkInode) c = await this.follow(ctx, dir, c, w);
    if (!(c instanceof DirInode)) fail("ENOTDIR");
    return c;
  }

  /** Follow a symlink found in `dir` to what it finally names. */
  private async follow(ctx: Ctx, dir: DirInode, link: SymlinkInode, w: Walk): Promise<Inode> {
    if (++w.links > MAXSYMLINKS) fail("ELOOP");
    if (link instanceof MagicLink) return this.magicTarget(link);
    const target = link.readTarget(ctx);
    if (target.length === 0) fail("ENOENT");
    const p = await this.walkParent(ctx, dir, target, w);
    return this.finish(ctx, p, true, w);
  }

  /** The inode behind /proc/<pid>/fd/N. */
  private magicTarget(link: MagicLink): Inode {
    const d = link.description();
    if (!d) fail("ENOENT");
    if (d instanceof VfsFile) return d.inode;
    return new OpenDescriptionInode(link.fs, d);
  }

  /** Resolve the last component (following a final symlink if `follow`). */
  private async finish(ctx: Ctx, p: Parent, follow: boolean, w: Walk): Promise<Inode> {
    if (p.last === "") return p.dir;
    checkPermission(ctx.cred, p.dir, MAY_EXEC);
    const c = await this.child(p.dir, p.last);
    if (!c) fail("ENOENT");
    if (c instanceof SymlinkInode && (follow || p.slash)) {
      const target = await this.follow(ctx, p.dir, c, w);
      if (p.slash && !(target instanceof DirInode)) fail("ENOTDIR");
      return target;
    }
    if (p.slash && !(c instanceof DirInode)) fail("ENOTDIR");
    return c;
  }

  /**
   * Resolve `path` to an inode. `follow`: follow a final symlink. An empty path with
   * AT_EMPTY_PATH semantics is the caller's: pass `emptyPath` to get `at` (or the cwd) back.
   */
  async resolve(
    ctx: Ctx,
    at: Inode | null,
    path: string,
    follow: boolean,
    emptyPath = false,
  ): Promise<Inode> {
    if (path === "" && emptyPath) return at ?? ctx.cwd;
    const w = { links: 0 };
    const p = await this.walkParent(ctx, this.startOf(ctx, at, path), path, w);
    return this.finish(ctx, p, follow, w);
  }

  private async parent(ctx: Ctx, at: Inode | null, path: string): Promise<Parent> {
    return this.walkParent(ctx, this.startOf(ctx, at, path), path, { links: 0 });
  }

  /** The path of a directory from the VFS root (getcwd, /proc/<pid>/cwd). ENOENT once removed. */
  pathOf(dir: DirInode, root: DirInode = this.root): string {
    const names: string[] = [];
    let d = dir;
    for (let guard = 0; d !== root && d.parent !== d; guard++) {
      if (d.removed || guard > PATH_MAX) fail("ENOENT");
      names.push(d.name);
      d = d.parent;
      while (d.mounted) d = d.mounted;
    }
    return `/${names.reverse().join("/")}`;
  }

  /** getcwd(2). */
  getcwd(ctx: Ctx): string {
    return this.pathOf(ctx.cwd, this.rootOf(ctx));
  }

  /** chdir/fchdir/chroot target: a directory the caller may search. */
  async lookupDir(ctx: Ctx, at: Inode | null, path: string): Promise<DirInode> {
    const d = await this.resolve(ctx, at, path, true);
    if (!(d instanceof DirInode)) fail("ENOTDIR");
    checkPermission(ctx.cred, d, MAY_EXEC);
    return d;
  }

  // ---------------------------------------------------------------- open

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
  private async openLast(
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
  private nameOf(inode: Inode, p: Parent): string | undefined {
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
  private async openInode(
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
    if (write && inode.fs.readOnly) fail("EROFS");
    if (inode instanceof FileInode) {
      if (write || trunc) await inode.copyUp();
      await inode.acquire();
      const f = new RegularFile(inode, flags);
      if (trunc && inode.size() > 0) inode.truncate(0);
      return f;
    }
    if (inode instanceof GeneratedInode) {
      if (write) fail("EACCES");
      return new SnapshotFile(inode, flags, inode.generate(ctx));
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
  private checkCreate(ctx: Ctx, dir: DirInode, name: string): void {
    if (name.length > NAME_MAX) fail("ENAMETOOLONG");
    checkPermission(ctx.cred, dir, MAY_WRITE | MAY_EXEC);
    if (dir.removed) fail("ENOENT");
    if (dir.fs.readOnly) fail("EROFS");
  }

  /** The group a new inode of `dir` gets: a setgid directory hands its own down. */
  private newGid(ctx: Ctx, dir: DirInode): number {
    return dir.mode & S_ISGID ? dir.gid : ctx.cred.gid;
  }

  /** Make a new inode under `dir` after the checks creating needs. */
  private createIn<T extends Inode>(ctx: Ctx, dir: DirInode, name: string, make: (fs: Fs) => T): T {
    this.checkCreate(ctx, dir, name);
    const node = make(dir.fs);
    node.uid = ctx.cred.uid;
    // A setgid directory hands its group (and, to directories, the bit) down.
    node.gid = dir.mode & S_ISGID ? dir.gid : ctx.cred.gid;
    if (node instanceof DirInode && dir.mode & S_ISGID) node.mode |= S_ISGID;
    dir.attach(name, node);
    return node;
  }

  // ---------------------------------------------------------------- attributes

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

  // ---------------------------------------------------------------- names

  /** A parent ready for creating `last` in it: EEXIST if taken. */
  private async freeName(ctx: Ctx, at: Inode | null, path: string): Promise<Parent> {
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
  private async victim(ctx: Ctx, p: Parent): Promise<Inode> {
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
  private holder(dir: DirInode, name: string): Inode | undefined {
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
  private async renameOnHost(
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

  // ---------------------------------------------------------------- descriptions

  /** pipe2(2): [read end, write end]; the flags' O_NONBLOCK applies to both. */
  pipe(flags = 0): [PipeReader, PipeWriter] {
    return makePipe(flags);
  }
}

function unlinked(inode: Inode): void {
  if (inode instanceof FileInode) inode.unlinked();
  else {
    inode.nlink = Math.max(0, inode.nlink - 1);
    inode.changed();
  }
}

/** A /proc/self/fd/N link to a description the VFS did not make (a host stream, a pipe). */
export class OpenDescriptionInode extends Inode {
  constructor(
    fs: Fs,
    readonly description: FileDescription,
  ) {
    const s = description.stat();
    super(fs, s.mode, s.uid, s.gid, s.ino);
  }
  override stat(): Stat {
    const s = this.description.stat();
    const now = nowNs();
    return { ...s, blocks: 0, atimeNs: now, mtimeNs: now, ctimeNs: now };
  }
  /** Linux opens the pipe anew; other streams are shared, as their file is. */
  reopen(flags: number): FileDescription {
    const d = this.description;
    if (d instanceof PipeReader || d instanceof PipeWriter) {
      const acc = flags & O_ACCMODE;
      if (acc === 0) return new PipeReader(d.pipe, flags);
      if (acc === 1) return new PipeWriter(d.pipe, flags);
      fail("EINVAL");
    }
    return d;
  }
}
