// memfd_create's files: regular files in the kernel's memory with no name (nlink 0) on an
// internal tmpfs, which live as long as a descriptor or a mapping holds them; and file seals
// (fcntl F_ADD_SEALS, F_GET_SEALS), which FileInode enforces on write and truncate and mmap
// on new writable shared mappings.
import { fail } from "../errno.js";
import { canWrite, O_RDWR, RegularFile } from "./file.js";
import {
  type Cred,
  F_SEAL_FUTURE_WRITE,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  FileInode,
  type Fs,
} from "./inode.js";

const O_LARGEFILE = 0o100000;
const ALL_SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;

/** Linux's limit on a memfd's name: NAME_MAX less the "memfd:" prefix. */
export const MFD_NAME_MAX = 249;

/** The inodes memfd_create made: the only ones whose seals can change. */
const memfds = new WeakSet<FileInode>();

/** A new memfd open for reading and writing; without `sealing` it can never take a seal. */
export async function createMemfd(fs: Fs, cred: Cred, name: string, sealing: boolean): Promise<RegularFile> {
  const inode = new FileInode(fs, 0o777, cred.uid, cred.gid);
  inode.nlink = 0;
  inode.seals = sealing ? 0 : F_SEAL_SEAL;
  memfds.add(inode);
  await inode.acquire();
  const f = new RegularFile(inode, O_RDWR | O_LARGEFILE);
  // What /proc/<pid>/fd and /proc/<pid>/maps show, as on Linux.
  f.path = `/memfd:${name} (deleted)`;
  return f;
}

/** The seals of a file that has them: a memfd's, and F_SEAL_SEAL for any other tmpfs file (EINVAL elsewhere). */
function sealsOf(d: object): { inode: FileInode; seals: number } {
  if (d instanceof RegularFile) {
    if (memfds.has(d.inode)) return { inode: d.inode, seals: d.inode.seals };
    if (d.inode.fs.type === "tmpfs") return { inode: d.inode, seals: F_SEAL_SEAL };
  }
  return fail("EINVAL", "only memfd and tmpfs files have seals");
}

export function getSeals(d: object): number {
  return sealsOf(d).seals;
}

/**
 * F_ADD_SEALS with Linux's checks in Linux's order. `writableMapped` says whether a writable
 * shared mapping of the file exists (F_SEAL_WRITE is EBUSY then).
 */
export function addSeals(
  d: { flags: number },
  seals: number,
  writableMapped: (inode: FileInode) => boolean,
): void {
  if (!canWrite(d.flags)) fail("EPERM");
  if (seals & ~ALL_SEALS) fail("EINVAL");
  const { inode, seals: now } = sealsOf(d);
  if (now & F_SEAL_SEAL) fail("EPERM", "the file is sealed against new seals");
  if (seals & F_SEAL_WRITE && !(now & F_SEAL_WRITE) && writableMapped(inode)) fail("EBUSY");
  inode.seals = now | seals;
}

/** A new writable shared mapping of a file sealed against writes is EPERM. */
export function checkWritableMapping(inode: FileInode): void {
  if (inode.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) fail("EPERM", "the file is sealed against writes");
}
