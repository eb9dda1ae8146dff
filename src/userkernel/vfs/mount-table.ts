// The mount table: the kernel's own mounts and the config's (tmpfs, bind mounts of host
// directories and files), where each lands in the tree, and /proc/mounts and mountinfo.

import { O_CREAT, O_EXCL } from "../../sys/file.js";
import { fail } from "../errno.js";
import type { GoferClient } from "../gofer/client.js";
import { BindDir, openVolumeRoot } from "./bind.js";
import { MAXSYMLINKS } from "./flags.js";
import { type Ctx, DirInode, Fs, type Inode, SymlinkInode } from "./inode.js";
import { VfsNames } from "./names.js";
import { MagicLink } from "./proc.js";
import { makedev } from "./stat.js";
import type { Walk } from "./walk.js";

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

/** The first mount id of /proc/<pid>/mountinfo. */
const FIRST_MOUNT_ID = 20;

export class MountTable extends VfsNames {
  readonly mounts: MountInfo[] = [];
  private nextMinor = 40;
  protected readonly memoryLimit: number;

  constructor(root: DirInode, memoryLimit: number) {
    super(root);
    this.memoryLimit = memoryLimit;
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

  private shmem: Fs | undefined;
  /** The internal tmpfs that holds files with no name anywhere (memfd_create's), made on first use. */
  internalTmpfs(): Fs {
    if (!this.shmem) {
      this.shmem = new Fs(makedev(0, this.nextMinor++), "tmpfs", "tmpfs");
      this.shmem.limit = this.memoryLimit;
    }
    return this.shmem;
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
  protected async fileMountPoint(ctx: Ctx, path: string): Promise<{ dir: DirInode; name: string }> {
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
  protected async mountPoint(ctx: Ctx, path: string): Promise<DirInode> {
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
  protected async mkdirAll(ctx: Ctx, start: DirInode, path: string, w: Walk): Promise<DirInode> {
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

  protected async mountNew(
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

  /** The mountinfo id of the mount of device `dev` (0 for none: a pipe, a host stream). */
  mountId(dev: number): number {
    const i = this.mounts.findIndex((m) => m.fs.dev === dev);
    return i < 0 ? 0 : FIRST_MOUNT_ID + i;
  }

  /** /proc/<pid>/mountinfo (proc(5)): ids, parent ids, device, root, point, options, type, source. */
  mountinfoText(): string {
    const FIRST_ID = FIRST_MOUNT_ID;
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
}
