// The extended attribute calls (set/get/list/remove, by path, by path without following a
// final symlink, by descriptor): the arguments read and checked in Linux's order (the name,
// the value's size, the flags, then the path or descriptor), vfs/xattr.ts does the rest.
// ls -l asks for ACLs and SELinux labels this way and takes EOPNOTSUPP or ENODATA as "none".
import { fail } from "../errno.js";
import type { Task } from "../kernel/task.js";
import { type Inode, inodeOf } from "../vfs/index.js";
import {
  checkName,
  getXattr,
  listXattr,
  removeXattr,
  setXattr,
  XATTR_CREATE,
  XATTR_NAME_MAX,
  XATTR_REPLACE,
  XATTR_SIZE_MAX,
} from "../vfs/xattr.js";
import { fsCall, pathArg } from "./fs-common.js";
import { addr, type Handler, int, uint } from "./types.js";

type Target = "path" | "lpath" | "fd";

/** XATTR_LIST_MAX: a list buffer larger than this is used as this large. */
const XATTR_LIST_MAX = 65536;

/** A size_t argument, capped so that it is a safe number. */
function sizeArg(v: bigint | undefined): number {
  const n = BigInt.asUintN(64, v ?? 0n);
  return n > 0x7fffffffn ? 0x7fffffff : Number(n);
}

/** The inode a call names: by path (following a final symlink or not) or by descriptor. */
async function targetOf(t: Task, how: Target, v: bigint | undefined): Promise<Inode> {
  if (how === "fd") {
    const d = t.fds.get(int(v));
    return inodeOf(d) ?? fail("ENOTSUP", "a host stream keeps no extended attributes");
  }
  const { vfs, ctx } = fsCall(t);
  return vfs.resolve(ctx, null, pathArg(t, v), how === "path");
}

function nameArg(t: Task, v: bigint | undefined): string {
  const name = t.mm.readCString(addr(v), XATTR_NAME_MAX + 1, "latin1", "ERANGE");
  checkName(name);
  return name;
}

/** Copy `b` out to a buffer of `cap` bytes: size 0 asks for the size, a short one is ERANGE. */
function copyOut(t: Task, buf: bigint | undefined, cap: number, b: Buffer): number {
  if (cap === 0) return b.length;
  if (b.length > cap) fail("ERANGE");
  if (b.length > 0) t.mm.write(addr(buf), b);
  return b.length;
}

function setter(how: Target): Handler {
  return async (t, a) => {
    const name = nameArg(t, a[1]);
    const len = sizeArg(a[3]);
    if (len > XATTR_SIZE_MAX) fail("E2BIG");
    const value = len > 0 ? t.mm.read(addr(a[2]), len) : Buffer.alloc(0);
    const flags = uint(a[4]);
    if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) fail("EINVAL");
    const inode = await targetOf(t, how, a[0]);
    setXattr(credOf(t), inode, name, value, flags);
    return 0;
  };
}

function getter(how: Target): Handler {
  return async (t, a) => {
    const name = nameArg(t, a[1]);
    const inode = await targetOf(t, how, a[0]);
    const v = getXattr(credOf(t), inode, name);
    return copyOut(t, a[2], Math.min(sizeArg(a[3]), XATTR_SIZE_MAX), v);
  };
}

function lister(how: Target): Handler {
  return async (t, a) => {
    const inode = await targetOf(t, how, a[0]);
    const names = listXattr(credOf(t), inode);
    const b = Buffer.from(names.map((n) => `${n}\0`).join(""), "latin1");
    return copyOut(t, a[1], Math.min(sizeArg(a[2]), XATTR_LIST_MAX), b);
  };
}

function remover(how: Target): Handler {
  return async (t, a) => {
    const name = nameArg(t, a[1]);
    const inode = await targetOf(t, how, a[0]);
    removeXattr(credOf(t), inode, name);
    return 0;
  };
}

/** The caller's file-system credentials (the effective ids). */
function credOf(t: Task) {
  return fsCall(t).ctx.cred;
}

export const setxattr = setter("path");
export const lsetxattr = setter("lpath");
export const fsetxattr = setter("fd");
export const getxattr = getter("path");
export const lgetxattr = getter("lpath");
export const fgetxattr = getter("fd");
export const listxattr = lister("path");
export const llistxattr = lister("lpath");
export const flistxattr = lister("fd");
export const removexattr = remover("path");
export const lremovexattr = remover("lpath");
export const fremovexattr = remover("fd");
