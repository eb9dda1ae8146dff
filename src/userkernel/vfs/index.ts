// The userkernel's file systems: how the file syscalls use them.
//
// SETUP (once per sandbox)
//   const gofer = await GoferClient.start(bundleRootfs);   // the only opener of host files
//   const vfs = await Vfs.create({ gofer, version, processes });
//   then the config's mounts (kernel/mounts.ts): vfs.mountVolume(...) for a bind mount
//   (gofer root N), vfs.mountTmpfs(ctx, path, { mode, size, readOnly }) for a tmpfs.
//   ...at exit: await gofer.close();
// "/" is the image (read-only, through the gofer) under an in-memory overlay; /tmp and
// /dev/shm are tmpfs; /dev has null, zero, full, random, urandom, tty (ENXIO: no terminal),
// stdin/stdout/stderr -> /proc/self/fd/N; /proc is the sandbox's own (see proc.ts for what exists).
// `vfs.processes` (a ProcessSource) feeds /proc/<pid> and /proc/self/fd from the task list.
//
// CALLER CONTEXT
//   Every operation takes `ctx: Ctx` = { cred: {uid, gid, groups}, cwd: DirInode, root?, pid }.
//   Keep `cwd` (a DirInode) in the task: chdir sets it to `await vfs.lookupDir(ctx, at, path)`,
//   fchdir to the dir of the description (ENOTDIR otherwise), getcwd is `vfs.getcwd(ctx)`.
//   cred are the fs ids (euid/egid); for access/faccessat without AT_EACCESS pass the real ids.
//
// PATHS AND NAMES are byte strings: decode a path from tracee memory with
//   buf.toString("latin1") and encode names/paths back (getcwd, readlink) with latin1,
//   so no byte sequence is altered.
//
// DIRFDS (*at calls): pass `at = dirfdInode(task.fds, dirfd)` (null for AT_FDCWD; EBADF
//   for a closed fd). A description that is not the VFS's (host stdio) gives ENOTDIR for
//   relative paths and still answers AT_EMPTY_PATH.
// EXECVE: `const f = await vfs.openExec(ctx, at, path)` (EACCES unless a regular file the
//   caller may execute), then f.pread(buf, off) to load it.
//
// CALLS (each throws KernelError: return -err.errno)
//   open/openat/creat  d = await vfs.open(ctx, at, path, flags, mode & ~umask) -> install d
//   stat family        s = await vfs.stat(ctx, at, path, flags)   (AT_SYMLINK_NOFOLLOW,
//                      AT_EMPTY_PATH); fstat: statOf(desc). Copy out encodeStat(s) (144
//                      bytes) or encodeStatx(s) (256 bytes).
//   readlink(at)       await vfs.readlink(ctx, at, path)  (return length, no NUL, truncate)
//   access/faccessat2  await vfs.access(ctx, at, path, mode, flags)
//   mkdir(at)          await vfs.mkdir(ctx, at, path, mode & ~umask)
//   mknod(at)          await vfs.mknod(ctx, at, path, mode & ~umask, dev)
//   unlink(at)/rmdir   await vfs.unlink(ctx, at, path, flags) / vfs.rmdir(ctx, at, path)
//   rename(at2)        await vfs.rename(ctx, oldAt, old, newAt, new, flags)
//   symlink(at)        await vfs.symlink(ctx, target, at, path)
//   link(at)           await vfs.link(ctx, oldAt, old, newAt, new, flags)
//   chmod/fchmod(at)   await vfs.chmod(ctx, at, path, mode, flags); fchmod: vfs.setMode(ctx, inode, mode)
//   chown family       await vfs.chown(ctx, at, path, uid, gid, flags); fchown: vfs.setOwner(...)
//   truncate           await vfs.truncate(ctx, at, path, len); ftruncate: await desc.truncate(len)
//   utimensat          await vfs.utimens(ctx, at, path, atime, mtime, flags)  (each a bigint ns,
//                      "now" for UTIME_NOW, "omit" for UTIME_OMIT; path "" = futimens)
//   statfs/fstatfs     encodeStatfs(await vfs.statfsPath(ctx, at, path)) / vfs.statfs(inode)
//                      (120 bytes)
//   pipe2              const [r, w] = vfs.pipe(flags)  (a write on a closed pipe throws EPIPE:
//                      the syscall layer raises SIGPIPE)
//   read/write/pread64/pwrite64/lseek/getdents64/fsync: the description's methods
//   (read, write, pread, pwrite, seek, getdents64, sync; absent method = see fdtable.ts).
//   Any of them may return a Promise (a pipe waiting for data): await it.
import type { FdTable, FileDescription } from "../kernel/fdtable.js";
import { VfsFile } from "./file.js";
import { Fs, type Inode } from "./inode.js";
import { makedev, nowNs, type Stat } from "./stat.js";
import { ClosedDirfd, OpenDescriptionInode } from "./vfs.js";

/** The inode behind a description, for *at calls with a dirfd and f* calls; undefined if not the VFS's. */
export function inodeOf(desc: FileDescription): Inode | undefined {
  return desc instanceof VfsFile ? desc.inode : undefined;
}

const AT_FDCWD = -100;
const anonFs = new Fs(makedev(0, 13), "anon_inodefs", "anon_inodefs", true);

/**
 * The `at` argument of the *at calls for `dirfd` (a signed int): null for AT_FDCWD, the
 * description's inode otherwise (EBADF for a closed fd). A description that is not the
 * VFS's (host stdio) still works with AT_EMPTY_PATH and gives ENOTDIR for relative paths.
 */
export function dirfdInode(fds: FdTable, dirfd: number): Inode | null {
  if (dirfd === AT_FDCWD) return null;
  const desc = fds.get(dirfd);
  return inodeOf(desc) ?? new OpenDescriptionInode(anonFs, desc);
}

/**
 * dirfdInode for a *at call's dirfd: a closed one is not an error yet, since an absolute
 * path ignores it (the walk fails EBADF if the path needs it).
 */
export function atInode(fds: FdTable, dirfd: number): Inode | null {
  if (dirfd !== AT_FDCWD && (dirfd < 0 || !fds.has(dirfd))) return new ClosedDirfd(anonFs);
  return dirfdInode(fds, dirfd);
}

/** fstat of any description: the VFS's full attributes, or what a host stream reports. */
export function statOf(desc: FileDescription): Stat {
  if (desc instanceof VfsFile) return desc.inode.stat();
  const s = desc.stat();
  const now = nowNs();
  return { ...s, blocks: 0, atimeNs: now, mtimeNs: now, ctimeNs: now };
}

export { decodeDirents, encodeDirents } from "./dirent.js";
export { DirFile, PathFile, RegularFile, SnapshotFile, VfsFile } from "./file.js";
export {
  type Cred,
  type Ctx,
  DeviceInode,
  DirInode,
  FileInode,
  Fs,
  Inode,
  SymlinkInode,
} from "./inode.js";
export { PIPE_BUF, PIPE_CAPACITY, Pipe, PipeReader, PipeWriter } from "./pipe.js";
export type { ProcessSource, ProcessView } from "./proc.js";
export {
  encodeStat,
  encodeStatfs,
  encodeStatx,
  STAT_SIZE,
  STATFS_SIZE,
  STATX_SIZE,
  type Stat,
  type StatFs,
} from "./stat.js";
export * from "./vfs.js";
