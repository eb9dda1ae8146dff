// File syscalls that name a path: open, the stat family, links, directories, attributes.
// Each reads its arguments, asks the VFS (see vfs/index.ts for the contract) and copies the
// answer out; failures are the VFS's KernelErrors.
import { fail } from "../errno.js";
import { openWaiting } from "../kernel/blocking-io.js";
import type { Task } from "../kernel/task.js";
import {
  AT_EMPTY_PATH,
  AT_REMOVEDIR,
  AT_SYMLINK_FOLLOW,
  AT_SYMLINK_NOFOLLOW,
  encodeStat,
  encodeStatfs,
  encodeStatx,
  O_CLOEXEC,
  O_CREAT,
  O_PATH,
  O_TMPFILE,
  O_TRUNC,
  type Stat,
  statOf,
} from "../vfs/index.js";
import { atArg, copyOutName, fdInode, fsCall, pathArg } from "./fs-common.js";
import { addr, type Handler, int, uint } from "./types.js";

const AT_FDCWD = -100n;
const O_WRONLY = 1;
const O_LARGEFILE = 0o100000;
const AT_EACCESS = 0x200;
const AT_NO_AUTOMOUNT = 0x800;
const AT_STATX_SYNC_TYPE = 0x6000;
const STATX_RESERVED = 0x80000000;
const RENAME_WHITEOUT = 4;

/** The permission bits a creating call keeps: mode & 07777 without the umask's bits. */
function createMode(t: Task, mode: bigint | undefined): number {
  return uint(mode) & 0o7777 & ~t.fs.umask;
}

async function openAt(
  t: Task,
  dirfd: bigint,
  path: bigint | undefined,
  flags: number,
  mode: bigint | undefined,
) {
  const { vfs, ctx } = fsCall(t);
  const name = pathArg(t, path);
  const creating = (flags & O_CREAT) !== 0 || (flags & O_TMPFILE) === O_TMPFILE;
  // x86-64 Linux forces O_LARGEFILE on every open (F_GETFL shows it), except O_PATH.
  const all = flags & O_PATH ? flags : flags | O_LARGEFILE;
  const d = await vfs.open(ctx, atArg(t, dirfd), name, all, creating ? createMode(t, mode) : 0);
  try {
    // A FIFO's end waits here for its peer (unless O_NONBLOCK), interruptibly.
    if (d.openWait) await openWaiting(t, d);
    return t.fds.install(d, (flags & O_CLOEXEC) !== 0);
  } catch (e) {
    d.release?.();
    throw e;
  }
}

export const open: Handler = (t, a) => openAt(t, AT_FDCWD, a[0], int(a[1]), a[2]);
export const openat: Handler = (t, a) => openAt(t, a[0]!, a[1], int(a[2]), a[3]);
export const creat: Handler = (t, a) => openAt(t, AT_FDCWD, a[0], O_CREAT | O_WRONLY | O_TRUNC, a[1]);

// ---------------------------------------------------------------- stat family

async function statAt(t: Task, dirfd: bigint, path: bigint | undefined, flags: number): Promise<Stat> {
  // Without a rootfs only fstat-by-dirfd works, as before the VFS existed.
  if (!t.fs.vfs && flags & AT_EMPTY_PATH && pathArg(t, path) === "") return statOf(t.fds.get(int(dirfd)));
  const { vfs, ctx } = fsCall(t);
  // Linux 6.11+ accepts a NULL path with AT_EMPTY_PATH.
  const name = path === 0n && flags & AT_EMPTY_PATH ? "" : pathArg(t, path);
  return vfs.stat(ctx, atArg(t, dirfd), name, flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH));
}

export const stat: Handler = async (t, a) => {
  t.mm.write(addr(a[1]), encodeStat(await statAt(t, AT_FDCWD, a[0], 0)));
  return 0;
};

export const lstat: Handler = async (t, a) => {
  t.mm.write(addr(a[1]), encodeStat(await statAt(t, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW)));
  return 0;
};

export const newfstatat: Handler = async (t, a) => {
  const flags = int(a[3]);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT)) fail("EINVAL");
  t.mm.write(addr(a[2]), encodeStat(await statAt(t, a[0]!, a[1], flags)));
  return 0;
};

export const statx: Handler = async (t, a) => {
  const flags = int(a[2]);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE)) fail("EINVAL");
  if ((flags & AT_STATX_SYNC_TYPE) === AT_STATX_SYNC_TYPE) fail("EINVAL");
  if (uint(a[3]) & STATX_RESERVED) fail("EINVAL");
  t.mm.write(addr(a[4]), encodeStatx(await statAt(t, a[0]!, a[1], flags)));
  return 0;
};

// ---------------------------------------------------------------- symlinks and access

/** The only path a static glibc binary looks up without a rootfs. */
const SELF_EXE = "/proc/self/exe";

async function readlinkAt(
  t: Task,
  dirfd: bigint,
  path: bigint | undefined,
  buf: bigint | undefined,
  size: bigint | undefined,
) {
  const len = int(size);
  if (len <= 0) fail("EINVAL");
  let target: string;
  if (!t.fs.vfs && pathArg(t, path) === SELF_EXE) target = t.group.exe;
  else {
    const { vfs, ctx } = fsCall(t);
    target = await vfs.readlink(ctx, atArg(t, dirfd), pathArg(t, path));
  }
  return copyOutName(t, addr(buf), len, target);
}

export const readlink: Handler = (t, a) => readlinkAt(t, AT_FDCWD, a[0], a[1], a[2]);
export const readlinkat: Handler = (t, a) => readlinkAt(t, a[0]!, a[1], a[2], a[3]);

async function accessAt(t: Task, dirfd: bigint, path: bigint | undefined, mode: number, flags: number) {
  if (flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) fail("EINVAL");
  const { vfs, ctx } = fsCall(t, !(flags & AT_EACCESS));
  await vfs.access(ctx, atArg(t, dirfd), pathArg(t, path), mode, flags & ~AT_EACCESS);
  return 0;
}

export const access: Handler = (t, a) => accessAt(t, AT_FDCWD, a[0], int(a[1]), 0);
export const faccessat: Handler = (t, a) => accessAt(t, a[0]!, a[1], int(a[2]), 0);
export const faccessat2: Handler = (t, a) => accessAt(t, a[0]!, a[1], int(a[2]), int(a[3]));

export const symlink: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  await vfs.symlink(ctx, pathArg(t, a[0]), null, pathArg(t, a[1]));
  return 0;
};

export const symlinkat: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  await vfs.symlink(ctx, pathArg(t, a[0]), atArg(t, a[1]), pathArg(t, a[2]));
  return 0;
};

async function linkAt(
  t: Task,
  od: bigint,
  op: bigint | undefined,
  nd: bigint,
  np: bigint | undefined,
  flags: number,
) {
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) fail("EINVAL");
  const { vfs, ctx } = fsCall(t);
  await vfs.link(ctx, atArg(t, od), pathArg(t, op), atArg(t, nd), pathArg(t, np), flags);
  return 0;
}

export const link: Handler = (t, a) => linkAt(t, AT_FDCWD, a[0], AT_FDCWD, a[1], 0);
export const linkat: Handler = (t, a) => linkAt(t, a[0]!, a[1], a[2]!, a[3], int(a[4]));

// ---------------------------------------------------------------- names

async function mkdirAt(t: Task, dirfd: bigint, path: bigint | undefined, mode: bigint | undefined) {
  const { vfs, ctx } = fsCall(t);
  await vfs.mkdir(ctx, atArg(t, dirfd), pathArg(t, path), createMode(t, mode));
  return 0;
}

export const mkdir: Handler = (t, a) => mkdirAt(t, AT_FDCWD, a[0], a[1]);
export const mkdirat: Handler = (t, a) => mkdirAt(t, a[0]!, a[1], a[2]);

async function mknodAt(
  t: Task,
  dirfd: bigint,
  path: bigint | undefined,
  mode: number,
  dev: bigint | undefined,
) {
  const { vfs, ctx } = fsCall(t);
  const m = (mode & 0o170000) | (mode & 0o7777 & ~t.fs.umask);
  await vfs.mknod(ctx, atArg(t, dirfd), pathArg(t, path), m, Number(dev ?? 0n));
  return 0;
}

export const mknod: Handler = (t, a) => mknodAt(t, AT_FDCWD, a[0], uint(a[1]), a[2]);
export const mknodat: Handler = (t, a) => mknodAt(t, a[0]!, a[1], uint(a[2]), a[3]);

export const rmdir: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  await vfs.rmdir(ctx, null, pathArg(t, a[0]));
  return 0;
};

export const unlink: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  await vfs.unlink(ctx, null, pathArg(t, a[0]), 0);
  return 0;
};

export const unlinkat: Handler = async (t, a) => {
  const flags = int(a[2]);
  if (flags & ~AT_REMOVEDIR) fail("EINVAL");
  const { vfs, ctx } = fsCall(t);
  await vfs.unlink(ctx, atArg(t, a[0]), pathArg(t, a[1]), flags);
  return 0;
};

async function renameAt(
  t: Task,
  od: bigint,
  op: bigint | undefined,
  nd: bigint,
  np: bigint | undefined,
  flags: number,
) {
  if (flags & RENAME_WHITEOUT) fail("EINVAL", "RENAME_WHITEOUT");
  const { vfs, ctx } = fsCall(t);
  await vfs.rename(ctx, atArg(t, od), pathArg(t, op), atArg(t, nd), pathArg(t, np), flags);
  return 0;
}

export const rename: Handler = (t, a) => renameAt(t, AT_FDCWD, a[0], AT_FDCWD, a[1], 0);
export const renameat: Handler = (t, a) => renameAt(t, a[0]!, a[1], a[2]!, a[3], 0);
export const renameat2: Handler = (t, a) => renameAt(t, a[0]!, a[1], a[2]!, a[3], uint(a[4]));

// ---------------------------------------------------------------- working directory

export const getcwd: Handler = (t, a) => {
  const { vfs, ctx } = fsCall(t);
  const cwd = Buffer.from(`${vfs.getcwd(ctx)}\0`, "latin1");
  const size = addr(a[1]);
  if (size < cwd.length) fail("ERANGE");
  t.mm.write(addr(a[0]), cwd);
  return cwd.length;
};

export const chdir: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  t.fs.cwd = await vfs.lookupDir(ctx, null, pathArg(t, a[0]));
  return 0;
};

export const fchdir: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  // "." from the descriptor's inode: ENOTDIR unless a directory, EACCES without search right.
  t.fs.cwd = await vfs.lookupDir(ctx, fdInode(t, a[0]), ".");
  return 0;
};

/** chroot: the sandbox's root may narrow its own view further; the cwd stays where it is. */
export const chroot: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  const dir = await vfs.lookupDir(ctx, null, pathArg(t, a[0]));
  if (t.creds.euid !== 0) fail("EPERM");
  t.fs.root = dir;
  return 0;
};

// ---------------------------------------------------------------- attributes

export const chmod: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  await vfs.chmod(ctx, null, pathArg(t, a[0]), uint(a[1]));
  return 0;
};

export const fchmodat: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  await vfs.chmod(ctx, atArg(t, a[0]), pathArg(t, a[1]), uint(a[2]));
  return 0;
};

export const fchmod: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  await vfs.setMode(ctx, fdInode(t, a[0]), uint(a[1]));
  return 0;
};

async function chownAt(
  t: Task,
  dirfd: bigint,
  path: bigint | undefined,
  a: readonly bigint[],
  flags: number,
) {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) fail("EINVAL");
  const { vfs, ctx } = fsCall(t);
  await vfs.chown(ctx, atArg(t, dirfd), pathArg(t, path), int(a[0]), int(a[1]), flags);
  return 0;
}

export const chown: Handler = (t, a) => chownAt(t, AT_FDCWD, a[0], [a[1]!, a[2]!], 0);
export const lchown: Handler = (t, a) => chownAt(t, AT_FDCWD, a[0], [a[1]!, a[2]!], AT_SYMLINK_NOFOLLOW);
export const fchownat: Handler = (t, a) => chownAt(t, a[0]!, a[1], [a[2]!, a[3]!], int(a[4]));

export const fchown: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  await vfs.setOwner(ctx, fdInode(t, a[0]), int(a[1]), int(a[2]));
  return 0;
};

export const truncate: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  const len = BigInt.asIntN(64, a[1] ?? 0n);
  if (len < 0n) fail("EINVAL");
  await vfs.truncate(ctx, null, pathArg(t, a[0]), Number(len));
  return 0;
};

const UTIME_NOW = (1n << 30n) - 1n;
const UTIME_OMIT = (1n << 30n) - 2n;

function timespec(sec: bigint, nsec: bigint): bigint | "now" | "omit" {
  if (nsec === UTIME_NOW) return "now";
  if (nsec === UTIME_OMIT) return "omit";
  if (nsec < 0n || nsec >= 1_000_000_000n) fail("EINVAL");
  return sec * 1_000_000_000n + nsec;
}

export const utimensat: Handler = async (t, a) => {
  const flags = int(a[3]);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) fail("EINVAL");
  const { vfs, ctx } = fsCall(t);
  const times = addr(a[2]);
  let atime: bigint | "now" | "omit" = "now";
  let mtime: bigint | "now" | "omit" = "now";
  if (times !== 0) {
    const b = t.mm.read(times, 32);
    atime = timespec(b.readBigInt64LE(0), b.readBigInt64LE(8));
    mtime = timespec(b.readBigInt64LE(16), b.readBigInt64LE(24));
  }
  // A NULL path is futimens: the descriptor itself (AT_FDCWD there is EFAULT, as on Linux).
  if (a[1] === 0n) {
    if (int(a[0]) === -100) fail("EFAULT");
    await vfs.utimens(ctx, fdInode(t, a[0]), "", atime, mtime, flags);
  } else await vfs.utimens(ctx, atArg(t, a[0]), pathArg(t, a[1]), atime, mtime, flags);
  return 0;
};

export const statfs: Handler = async (t, a) => {
  const { vfs, ctx } = fsCall(t);
  t.mm.write(addr(a[1]), encodeStatfs(await vfs.statfsPath(ctx, null, pathArg(t, a[0]))));
  return 0;
};

export const fstatfs: Handler = (t, a) => {
  const { vfs } = fsCall(t);
  t.mm.write(addr(a[1]), encodeStatfs(vfs.statfs(fdInode(t, a[0]))));
  return 0;
};
