// Unix permission checks, as Linux's generic_permission does them (no ACLs, no capabilities
// beyond "uid 0 may do anything, but executes only what someone may execute").
import { fail } from "../errno.js";
import type { Cred, Inode } from "./inode.js";
import { S_IFDIR, S_IFMT, S_ISVTX } from "./stat.js";

export const MAY_EXEC = 1;
export const MAY_WRITE = 2;
export const MAY_READ = 4;

export function inGroup(cred: Cred, gid: number): boolean {
  return cred.gid === gid || (cred.groups?.includes(gid) ?? false);
}

export function permitted(cred: Cred, inode: Inode, mask: number): boolean {
  const mode = inode.mode;
  if (cred.uid === 0) {
    if ((mask & MAY_EXEC) === 0 || (mode & S_IFMT) === S_IFDIR) return true;
    return (mode & 0o111) !== 0;
  }
  let bits: number;
  if (cred.uid === inode.uid) bits = (mode >> 6) & 7;
  else if (inGroup(cred, inode.gid)) bits = (mode >> 3) & 7;
  else bits = mode & 7;
  return (bits & mask) === mask;
}

export function checkPermission(cred: Cred, inode: Inode, mask: number): void {
  if (!permitted(cred, inode, mask)) fail("EACCES");
}

/** The owner (or root) may change attributes. */
export function checkOwner(cred: Cred, inode: Inode): void {
  if (cred.uid !== 0 && cred.uid !== inode.uid) fail("EPERM");
}

/** In a sticky directory only the file's owner, the directory's owner or root may remove it. */
export function checkSticky(cred: Cred, dir: Inode, victim: Inode): void {
  if ((dir.mode & S_ISVTX) === 0 || cred.uid === 0) return;
  if (cred.uid !== victim.uid && cred.uid !== dir.uid) fail("EPERM");
}
