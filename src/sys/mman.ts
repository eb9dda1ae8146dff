// Memory the kernel maps into its own process: the memory file that holds every byte of
// an application's memory, and the views that let TypeScript read and write it without a
// system call per access.
import { check, koffi, libc, SysError } from "./libc.js";

const memfd_create_ = libc.func("int memfd_create(const char *name, unsigned int flags)");
const ftruncate_ = libc.func("int ftruncate(int fd, int64_t length)");
const fallocate_ = libc.func("int fallocate(int fd, int mode, int64_t offset, int64_t len)");
const mmap_ = libc.func(
  "uintptr_t mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, int64_t off)",
);
const munmap_ = libc.func("int munmap(uintptr_t addr, size_t len)");
const mprotect_ = libc.func("int mprotect(uintptr_t addr, size_t len, int prot)");
const close_ = libc.func("int close(int fd)");
const fcntl_ = libc.func("int fcntl(int fd, int cmd, int arg)");
const lseek_ = libc.func("int64_t lseek(int fd, int64_t offset, int whence)");
const pwrite_ = libc.func("int64_t pwrite(int fd, const void *buf, size_t count, int64_t offset)");
const process_vm_readv_ = libc.func(
  "int64_t process_vm_readv(int pid, const void *local, unsigned long liovcnt, const void *remote, unsigned long riovcnt, unsigned long flags)",
);
const process_vm_writev_ = libc.func(
  "int64_t process_vm_writev(int pid, const void *local, unsigned long liovcnt, const void *remote, unsigned long riovcnt, unsigned long flags)",
);

export const PAGE_SIZE = 4096;

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MAP_FIXED_NOREPLACE = 0x100000;

export const MFD_CLOEXEC = 0x1;
export const MFD_ALLOW_SEALING = 0x2;
/** Linux 6.3+: ask for an executable memfd explicitly (vm.memfd_noexec may forbid the default). */
export const MFD_EXEC = 0x10;

export const F_ADD_SEALS = 1033;
export const F_SEAL_SEAL = 0x1;
export const F_SEAL_SHRINK = 0x2;
export const F_SEAL_GROW = 0x4;
export const F_SEAL_WRITE = 0x8;

const FALLOC_FL_KEEP_SIZE = 0x1;
const FALLOC_FL_PUNCH_HOLE = 0x2;
const MAP_FAILED = 2 ** 64 - 1;

export function memfdCreate(name: string, flags = MFD_CLOEXEC): number {
  return check("memfd_create", memfd_create_(name, flags), name);
}

export function ftruncate(fd: number, length: number): void {
  check("ftruncate", ftruncate_(fd, length), String(fd));
}

/** Give pages of a file back to the host; reading them afterwards yields zeros. */
export function punchHole(fd: number, offset: number, length: number): void {
  check(
    "fallocate",
    fallocate_(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length),
    `${fd} ${offset}+${length}`,
  );
}

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;

/**
 * The populated extents of a sparse file within [offset, offset+length), found with
 * SEEK_DATA/SEEK_HOLE: pages never written (or punched out) are skipped, so copying a huge
 * reserved-but-untouched range costs nothing. Extents are clipped to the range.
 */
export function dataExtents(fd: number, offset: number, length: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const end = offset + length;
  let at = offset;
  while (at < end) {
    const d = Number(lseek_(fd, at, SEEK_DATA));
    if (d < 0) {
      const e = koffi.errno();
      if (e === ENXIO) break; // no data at or after `at`
      throw new SysError("lseek(SEEK_DATA)", e, String(fd));
    }
    if (d >= end) break;
    const h = Number(check("lseek(SEEK_HOLE)", lseek_(fd, d, SEEK_HOLE), String(fd)));
    out.push([d, Math.min(h, end)]);
    at = h;
  }
  return out;
}

export function pwrite(fd: number, data: Uint8Array, offset: number): void {
  let done = 0;
  while (done < data.length) {
    const n = check(
      "pwrite",
      pwrite_(fd, data.subarray(done), data.length - done, offset + done),
      String(fd),
    );
    if (n === 0) throw new SysError("pwrite", 5, String(fd));
    done += n;
  }
}

export function close(fd: number): void {
  check("close", close_(fd), String(fd));
}

export function addSeals(fd: number, seals: number): void {
  check("fcntl", fcntl_(fd, F_ADD_SEALS, seals), `F_ADD_SEALS ${fd}`);
}

/** mmap(2) in this process; returns the address as a number (user addresses fit in 47 bits). */
export function mmap(addr: number, length: number, prot: number, flags: number, fd = -1, offset = 0): number {
  const r = mmap_(addr, length, prot, flags, fd, offset) as number | bigint;
  if (Number(r) === MAP_FAILED || BigInt(r) === 0xffffffffffffffffn)
    throw new SysError("mmap", koffi.errno(), `${length} bytes`);
  return Number(r);
}

export function munmap(addr: number, length: number): void {
  check("munmap", munmap_(addr, length), `0x${addr.toString(16)}`);
}

export function mprotect(addr: number, length: number, prot: number): void {
  check("mprotect", mprotect_(addr, length, prot), `0x${addr.toString(16)}`);
}

/** Views larger than 4 GiB crash koffi, so callers split big mappings into chunks. */
export const MAX_VIEW = 2 ** 32;

/** An ArrayBuffer over memory mapped in this process; valid until that memory is unmapped. */
export function view(addr: number, length: number): ArrayBuffer {
  if (length > MAX_VIEW) throw new RangeError(`view of ${length} bytes exceeds ${MAX_VIEW}`);
  return koffi.view(addr, length);
}

function iovec(addr: number | bigint, len: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(addr), 0);
  b.writeBigUInt64LE(BigInt(len), 8);
  return b;
}

/** Fallback copy out of another process; the memory file makes this unnecessary normally. */
export function processVmRead(pid: number, remote: bigint, into: Buffer): number {
  const local = iovec(koffi.address(into), into.length);
  return check(
    "process_vm_readv",
    process_vm_readv_(pid, local, 1, iovec(remote, into.length), 1, 0),
    String(pid),
  );
}

export function processVmWrite(pid: number, remote: bigint, from: Buffer): number {
  const local = iovec(koffi.address(from), from.length);
  return check(
    "process_vm_writev",
    process_vm_writev_(pid, local, 1, iovec(remote, from.length), 1, 0),
    String(pid),
  );
}
