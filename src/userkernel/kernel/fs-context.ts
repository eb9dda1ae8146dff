// Where a task's paths start and what they create: working directory, root (after chroot)
// and umask. CLONE_FS shares it between tasks; fork copies it.
import type { DirInode, Vfs } from "../vfs/index.js";

export class FsContext {
  constructor(
    /** The file system tree when the sandbox has a rootfs; without one, path syscalls fail. */
    readonly vfs: Vfs | undefined,
    /** The working directory (with a VFS), and the root after chroot (the VFS's otherwise). */
    public cwd: DirInode | undefined,
    public root: DirInode | undefined,
    public umask: number,
  ) {}

  copy(): FsContext {
    return new FsContext(this.vfs, this.cwd, this.root, this.umask);
  }
}
