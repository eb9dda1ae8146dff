// Extended attributes of the file systems that live in the kernel's memory (the overlay root
// and tmpfs), kept on the inode, with Linux's rules: the user.* namespace on regular files
// and directories, by file permission (a sticky directory's only by its owner); trusted.*
// for root alone (empty to others); security.* written by root alone; system.* (POSIX ACLs) is not
// supported, nor is any xattr on other file systems (/proc, volumes): EOPNOTSUPP there.
import { fail } from "../errno.js";
import type { Cred, Inode } from "./inode.js";
import { checkOwner, checkPermission, MAY_READ, MAY_WRITE } from "./perm.js";
import { S_IFDIR, S_IFMT, S_IFREG, S_ISVTX } from "./stat.js";

/** XATTR_NAME_MAX and XATTR_SIZE_MAX. */
export const XATTR_NAME_MAX = 255;
export const XATTR_SIZE_MAX = 65536;
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

const store = new WeakMap<Inode, Map<string, Buffer>>();

/** The file systems that keep extended attributes. */
function keeps(inode: Inode): boolean {
  return inode.fs.type === "overlay" || inode.fs.type === "tmpfs";
}

/** xattr_permission: may `cred` read (or write) attribute `name` of `inode`? */
function check(cred: Cred, inode: Inode, name: string, write: boolean): void {
  if (!keeps(inode)) fail("ENOTSUP", "this file system keeps no extended attributes");
  if (name.startsWith("trusted.")) {
    // To anyone else the namespace looks empty.
    if (cred.uid !== 0) fail(write ? "EPERM" : "ENODATA");
    return;
  }
  if (name.startsWith("security.")) {
    if (write && cred.uid !== 0) fail("EPERM");
    return;
  }
  if (!name.startsWith("user.")) fail("ENOTSUP", `the ${name.split(".")[0]}. namespace`);
  const type = inode.mode & S_IFMT;
  if (type !== S_IFREG && type !== S_IFDIR) fail(write ? "EPERM" : "ENODATA");
  // A sticky directory's attributes are its owner's (or root's) to change.
  if (write && type === S_IFDIR && inode.mode & S_ISVTX) checkOwner(cred, inode);
  checkPermission(cred, inode, write ? MAY_WRITE : MAY_READ);
}

/** A name as the syscalls take it: 1 to XATTR_NAME_MAX bytes (ERANGE otherwise). */
export function checkName(name: string): void {
  if (name.length === 0 || name.length > XATTR_NAME_MAX) fail("ERANGE");
}

export function setXattr(cred: Cred, inode: Inode, name: string, value: Buffer, flags: number): void {
  check(cred, inode, name, true);
  if (inode.fs.readOnly) fail("EROFS");
  let attrs = store.get(inode);
  const had = attrs?.has(name) ?? false;
  if (flags & XATTR_CREATE && had) fail("EEXIST");
  if (flags & XATTR_REPLACE && !had) fail("ENODATA");
  if (!attrs) {
    attrs = new Map();
    store.set(inode, attrs);
  }
  // Attributes are memory of the file system's, counted against its limit as content is.
  inode.fs.charge(value.length - (attrs.get(name)?.length ?? 0));
  attrs.set(name, Buffer.from(value));
  inode.changed();
}

export function getXattr(cred: Cred, inode: Inode, name: string): Buffer {
  check(cred, inode, name, false);
  return store.get(inode)?.get(name) ?? fail("ENODATA");
}

export function removeXattr(cred: Cred, inode: Inode, name: string): void {
  check(cred, inode, name, true);
  if (inode.fs.readOnly) fail("EROFS");
  const attrs = store.get(inode);
  const v = attrs?.get(name) ?? fail("ENODATA");
  attrs!.delete(name);
  inode.fs.charge(-v.length);
  inode.changed();
}

/** The names `cred` may see (trusted.* only for root); Linux's order is its hash table's, so any order is right. */
export function listXattr(cred: Cred, inode: Inode): string[] {
  if (!keeps(inode)) return [];
  return [...(store.get(inode)?.keys() ?? [])].filter((n) => !n.startsWith("trusted.") || cred.uid === 0);
}
