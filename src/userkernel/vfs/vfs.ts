// The VFS: a sandbox's tree, built in layers of one job each (each module's class extends
// the one before): walk.ts the path walk, open.ts open and creating, attrs.ts the attribute
// calls, names.ts the name calls, mount-table.ts the mounts; this file builds the tree at
// boot. See index.ts for how the syscalls use it.
import * as os from "node:os";
import { MoatError } from "../../spec/errors.js";
import type { GoferClient } from "../gofer/client.js";
import { type MemoryFigures, memoryFigures } from "../mm/usage.js";
import { makeDevFs } from "./dev.js";
import type { Ctx, DirInode } from "./inode.js";
import { MountTable } from "./mount-table.js";
import { openImageRoot } from "./overlay.js";
import { makePipe, type PipeReader, type PipeWriter } from "./pipe.js";
import { makeProcFs, type ProcessSource } from "./proc.js";
import { makedev } from "./stat.js";

export * from "./flags.js";
export type { MountInfo, TmpfsOptions } from "./mount-table.js";
export { ClosedDirfd, OpenDescriptionInode } from "./open-description.js";

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

const NO_PROCESSES: ProcessSource = { get: () => undefined, pids: () => [] };

/**
 * A sandbox's file system tree: "/" is the image (read-only, through the gofer) under an
 * in-memory overlay; /tmp and /dev/shm are tmpfs; /dev holds the kernel's devices; /proc is
 * synthetic. Each operation takes the caller's Ctx (credentials, cwd, pid) and, for *at
 * calls, the inode of the dirfd (null for AT_FDCWD).
 */
export class Vfs extends MountTable {
  processes: ProcessSource;

  private constructor(root: DirInode, opts: VfsOptions) {
    super(root, opts.memoryLimit ?? Math.floor(os.totalmem() / 2));
    this.processes = opts.processes ?? NO_PROCESSES;
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
          mountId: (dev) => vfs.mountId(dev),
        }),
      "proc",
      "proc",
      // rw, as Linux and runc mount it: its files refuse new names and removal themselves.
      false,
      "rw,nosuid,nodev,noexec,relatime",
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

  /** A context for the kernel itself (root, cwd "/"). */
  adminCtx(pid = 1): Ctx {
    return { cred: { uid: 0, gid: 0 }, cwd: this.root, pid };
  }

  // ---------------------------------------------------------------- descriptions

  /** pipe2(2): [read end, write end]; the flags' O_NONBLOCK applies to both. */
  pipe(flags = 0): [PipeReader, PipeWriter] {
    return makePipe(flags);
  }
}
