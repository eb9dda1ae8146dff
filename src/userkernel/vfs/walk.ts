// The path walk, Linux's namei rules: the start (root, cwd or dirfd), each intermediate
// component searched and crossed into what is mounted on it, symlinks followed within a
// budget, ".." stopping at the caller's root; and the reverse, a directory's path.
import { fail } from "../errno.js";
import { VfsFile } from "./file.js";
import { MAXSYMLINKS, NAME_MAX, PATH_MAX } from "./flags.js";
import { type Ctx, DirInode, type Inode, SymlinkInode } from "./inode.js";
import { ClosedDirfd, OpenDescriptionInode } from "./open-description.js";
import { checkPermission, MAY_EXEC } from "./perm.js";
import { MagicLink } from "./proc.js";

/** The symlink budget of one lookup (shared by the nested walks a symlink causes). */
export interface Walk {
  links: number;
}

/** A walk that stopped before the last component. */
export interface Parent {
  dir: DirInode;
  /** "" when the path named the start directory itself ("/", or "." style endings). */
  last: string;
  /** The path ended in "/": the last component must be a directory. */
  slash: boolean;
}

/** The walk over one tree whose root is `root`; the VFS's other layers build on it. */
export class PathWalk {
  constructor(readonly root: DirInode) {}

  protected rootOf(ctx: Ctx): DirInode {
    return ctx.root ?? this.root;
  }

  /** Where a relative path starts: the dirfd's inode, or the cwd. */
  protected startOf(ctx: Ctx, at: Inode | null, path: string): DirInode {
    if (path.startsWith("/")) return this.rootOf(ctx);
    if (at === null) return ctx.cwd;
    if (at instanceof ClosedDirfd) fail("EBADF");
    if (!(at instanceof DirInode)) fail("ENOTDIR");
    return at;
  }

  /** A child, with mounts crossed; null if there is none. */
  protected async child(dir: DirInode, name: string): Promise<Inode | null> {
    const covered = dir.fileMounts?.get(name);
    if (covered) return covered;
    const c = dir.cached(name);
    let n = c === undefined ? await dir.lookup(name) : c;
    while (n instanceof DirInode && n.mounted) n = n.mounted;
    return n;
  }

  protected dotdot(ctx: Ctx, dir: DirInode): DirInode {
    if (dir === this.rootOf(ctx)) return dir;
    let p = dir.parent;
    while (p.mounted) p = p.mounted;
    return p;
  }

  /** Resolve everything but the last component. */
  protected async walkParent(ctx: Ctx, start: DirInode, path: string, w: Walk): Promise<Parent> {
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
  protected async step(ctx: Ctx, dir: DirInode, name: string, w: Walk): Promise<DirInode> {
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
  protected async follow(ctx: Ctx, dir: DirInode, link: SymlinkInode, w: Walk): Promise<Inode> {
    if (++w.links > MAXSYMLINKS) fail("ELOOP");
    if (link instanceof MagicLink) return this.magicTarget(link);
    const target = link.readTarget(ctx);
    if (target.length === 0) fail("ENOENT");
    const p = await this.walkParent(ctx, dir, target, w);
    return this.finish(ctx, p, true, w);
  }

  /** The inode behind /proc/<pid>/fd/N. */
  protected magicTarget(link: MagicLink): Inode {
    const d = link.description();
    if (!d) fail("ENOENT");
    if (d instanceof VfsFile) return d.inode;
    return new OpenDescriptionInode(link.fs, d);
  }

  /** Resolve the last component (following a final symlink if `follow`). */
  protected async finish(ctx: Ctx, p: Parent, follow: boolean, w: Walk): Promise<Inode> {
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
    if (path === "" && emptyPath) {
      if (at instanceof ClosedDirfd) fail("EBADF");
      return at ?? ctx.cwd;
    }
    const w = { links: 0 };
    const p = await this.walkParent(ctx, this.startOf(ctx, at, path), path, w);
    return this.finish(ctx, p, follow, w);
  }

  protected async parent(ctx: Ctx, at: Inode | null, path: string): Promise<Parent> {
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
}
