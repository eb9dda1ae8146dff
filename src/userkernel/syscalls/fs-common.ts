// What the path-based file syscalls share: the sandbox's VFS and the caller's context, paths
// read from the program as byte strings, dirfds turned into the VFS's `at` argument.
import { fail } from "../errno.js";
import type { Task } from "../kernel/task.js";
import { atInode, type Ctx, dirfdInode, type Inode, PATH_MAX, type Vfs } from "../vfs/index.js";
import { addr, int } from "./types.js";

/** The VFS, or ENOSYS when the program runs without a rootfs (a host binary in tests). */
export function vfsOf(t: Task): Vfs {
  if (!t.fs.vfs) fail("ENOSYS", "path lookup needs a rootfs");
  return t.fs.vfs;
}

/** The VFS and the caller's context in one go; `real`: the real ids (access without AT_EACCESS). */
export function fsCall(t: Task, real = false): { vfs: Vfs; ctx: Ctx } {
  const vfs = vfsOf(t);
  return { vfs, ctx: t.fsCtx(vfs, real) };
}

/**
 * A path argument. latin1 keeps every byte as one char, so names that are not UTF-8 survive
 * the round trip to the VFS and back. A NULL or unmapped pointer is EFAULT.
 */
export function pathArg(t: Task, v: bigint | undefined): string {
  return t.mm.readCString(addr(v), PATH_MAX, "latin1");
}

/** The `at` of a *at call from its dirfd argument (null for AT_FDCWD; a closed one fails only if used). */
export function atArg(t: Task, v: bigint | undefined): Inode | null {
  return atInode(t.fds, int(v));
}

/** A descriptor used as the object of an f* call (fchmod, fchown, fstatfs): never AT_FDCWD. */
export function fdInode(t: Task, v: bigint | undefined): Inode {
  const fd = int(v);
  if (fd < 0) fail("EBADF");
  return dirfdInode(t.fds, fd) as Inode;
}

/** Write a byte string (latin1) into a user buffer of `size` bytes; returns bytes written. */
export function copyOutName(t: Task, buf: number, size: number, s: string): number {
  const b = Buffer.from(s, "latin1");
  const n = Math.min(b.length, size);
  if (n > 0) t.mm.write(buf, b.subarray(0, n));
  return n;
}
