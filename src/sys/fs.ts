// Filesystem calls Node does not offer: device nodes, extended attributes on links,
// mounts. Used by the image unpacker (device nodes, overlay whiteouts) and by backends.
import { check, libc } from "./libc.js";

const mknod_ = libc.func("int mknod(const char *path, uint32_t mode, uint64_t dev)");
const lsetxattr_ = libc.func(
  "int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)",
);
// koffi knows no ssize_t (intptr_t has its size), and fills a Buffer passed as void * in place.
const lgetxattr_ = libc.func(
  "intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)",
);
const llistxattr_ = libc.func("intptr_t llistxattr(const char *path, void *list, size_t size)");
const lremovexattr_ = libc.func("int lremovexattr(const char *path, const char *name)");
const syncfs_ = libc.func("int syncfs(int fd)");
const mount_ = libc.func(
  "int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)",
);
const umount2_ = libc.func("int umount2(const char *target, int flags)");

export const S_IFMT = 0o170000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** glibc's makedev for Linux: major and minor split across the 64-bit dev_t. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

/** mknod(2): `type` is S_IFCHR, S_IFBLK or S_IFIFO; `perm` the permission bits. */
export function mknod(path: string, type: number, perm: number, major = 0, minor = 0): void {
  check("mknod", mknod_(path, type | (perm & 0o7777), makedev(major, minor)), path);
}

export function lsetxattr(path: string, name: string, value: Buffer): void {
  check("lsetxattr", lsetxattr_(path, name, value, value.length, 0), `${path} ${name}`);
}

export function lgetxattr(path: string, name: string): Buffer | undefined {
  const buf = Buffer.alloc(65536);
  const n = Number(lgetxattr_(path, name, buf, buf.length));
  if (n < 0) {
    try {
      check("lgetxattr", n, `${path} ${name}`);
    } catch (e) {
      if ((e as { code?: string }).code === "ENODATA") return undefined;
      throw e;
    }
  }
  return buf.subarray(0, n);
}

export function llistxattr(path: string): string[] {
  const buf = Buffer.alloc(65536);
  const n = check("llistxattr", llistxattr_(path, buf, buf.length), path);
  return buf
    .subarray(0, n)
    .toString("latin1")
    .split("\0")
    .filter((s) => s.length > 0);
}

export function lremovexattr(path: string, name: string): void {
  check("lremovexattr", lremovexattr_(path, name), `${path} ${name}`);
}

/** syncfs(2): flush everything written to the filesystem that holds `fd`. */
export function syncfs(fd: number): void {
  check("syncfs", syncfs_(fd));
}

export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_REMOUNT = 32;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MNT_DETACH = 2;

export function mount(
  source: string,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null,
): void {
  check("mount", mount_(source, target, fstype, flags, data), `${fstype ?? ""} on ${target}`);
}

export function umount(target: string, flags = 0): void {
  check("umount2", umount2_(target, flags), target);
}
