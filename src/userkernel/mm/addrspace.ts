// One application address space, kept as Linux keeps it: a sorted list of VMAs, each a
// page-aligned range with protections and the memory-file offset that backs it. Every
// change is mirrored eagerly into the host process through a MappingInstaller, so the
// application never faults on memory the kernel believes is mapped.
import type { ErrnoName } from "../../sys/errno.js";
import { fail } from "../errno.js";
import type { HostAddressSpace, MappingInstaller } from "../platform/platform.js";
import { type MemoryFile, PAGE, pageDown, pageUp } from "./memfile.js";

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
const PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_FIXED_NOREPLACE = 0x100000;

export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;

export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;
export const MADV_REMOVE = 9;

/** Highest user address + 1 on x86-64 with 4-level paging (the host's TASK_SIZE). */
export const TASK_SIZE = 0x7fff_ffff_f000;
/** Lowest address mmap may hand out (the host's default vm.mmap_min_addr). */
export const MMAP_MIN_ADDR = 0x10000;

export interface Vma {
  start: number;
  end: number;
  prot: number;
  shared: boolean;
  /** Memory-file offset of `start`. */
  off: number;
  /** What the mapping is, for debugging and /proc/pid/maps later ("[stack]", "[heap]", a path). */
  name?: string;
}

export type Access = "read" | "write" | "force";

export class AddressSpace {
  private readonly vmas: Vma[] = [];
  brkStart = 0;
  brkEnd = 0;
  /** Tasks using it (CLONE_VM shares it); the last to leave frees its memory. */
  private users = 1;

  constructor(
    readonly mem: MemoryFile,
    /**
     * The host address space it mirrors (a platform HostAddressSpace; tests may pass a bare
     * MappingInstaller). Released with the last user, when it has a release().
     */
    readonly host: MappingInstaller & { readonly hostPid?: number; release?(): void },
    private readonly reserved: ReadonlyArray<{ start: number; end: number }>,
    /** Only mmapBase matters here; the rest of the Layout (layout.ts) is the loader's. */
    readonly layout: { mmapBase: number },
  ) {}

  /** Snapshot of the VMAs (copies), lowest first. */
  list(): Vma[] {
    return this.vmas.map((v) => ({ ...v }));
  }

  /** Index of the first VMA that ends above addr. */
  private indexAfter(addr: number): number {
    let lo = 0;
    let hi = this.vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.vmas[mid]!.end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  find(addr: number): Vma | undefined {
    const v = this.vmas[this.indexAfter(addr)];
    return v && v.start <= addr ? v : undefined;
  }

  private mapped(start: number, end: number): boolean {
    const v = this.vmas[this.indexAfter(start)];
    return v !== undefined && v.start < end;
  }

  private isReserved(start: number, end: number): boolean {
    return this.reserved.some((r) => r.start < end && start < r.end);
  }

  /** Is every page of [start, end) mapped? */
  private fullyMapped(start: number, end: number): boolean {
    let at = start;
    for (let i = this.indexAfter(start); i < this.vmas.length && at < end; i++) {
      const v = this.vmas[i]!;
      if (v.start > at) return false;
      at = v.end;
    }
    return at >= end;
  }

  /** Split the VMA containing addr (if any) so that a VMA boundary falls at addr. */
  private splitAt(addr: number): void {
    const i = this.indexAfter(addr);
    const v = this.vmas[i];
    if (!v || v.start >= addr) return;
    const right: Vma = { ...v, start: addr, off: v.off + (addr - v.start) };
    v.end = addr;
    this.vmas.splice(i + 1, 0, right);
  }

  private insert(v: Vma): void {
    this.vmas.splice(this.indexAfter(v.start), 0, v);
  }

  /** Remove [start, end) from the list; with `release`, give its file space back. */
  private carve(start: number, end: number, release: boolean): Vma[] {
    this.splitAt(start);
    this.splitAt(end);
    const i = this.indexAfter(start);
    let j = i;
    while (j < this.vmas.length && this.vmas[j]!.start < end) j++;
    const removed = this.vmas.splice(i, j - i);
    if (release) for (const v of removed) this.mem.release(v.off, v.end - v.start);
    return removed;
  }

  /** Merge VMAs around [start, end) that continue each other exactly. */
  private coalesce(start: number, end: number): void {
    let i = Math.max(0, this.indexAfter(start) - 1);
    while (i + 1 < this.vmas.length) {
      const a = this.vmas[i]!;
      const b = this.vmas[i + 1]!;
      if (a.start > end) break;
      if (
        a.end === b.start &&
        a.prot === b.prot &&
        a.shared === b.shared &&
        a.name === b.name &&
        a.off + (a.end - a.start) === b.off
      ) {
        a.end = b.end;
        this.vmas.splice(i + 1, 1);
      } else i++;
    }
  }

  /** Highest free range of `length` bytes below `below`, or throws ENOMEM. */
  private findFree(length: number, below: number): number {
    let ceiling = Math.min(below, TASK_SIZE);
    const blockers = [...this.vmas, ...this.reserved].sort((a, b) => b.start - a.start);
    for (const v of blockers) {
      if (v.start >= ceiling) continue;
      if (v.end <= ceiling - length) break;
      ceiling = v.start;
    }
    if (ceiling - length >= MMAP_MIN_ADDR) return ceiling - length;
    return fail("ENOMEM", `no room for ${length} bytes`);
  }

  /** Pick where a new mapping goes, Linux-style; returns the address (page aligned). */
  private place(addr: number, length: number, fixed: boolean, noReplace: boolean): number {
    if (fixed || noReplace) {
      if (addr % PAGE !== 0) fail("EINVAL", "unaligned fixed address");
      if (addr < MMAP_MIN_ADDR) fail("EPERM", "below mmap_min_addr");
      if (addr + length > TASK_SIZE) fail("ENOMEM", "beyond the address space");
      if (this.isReserved(addr, addr + length)) fail("ENOMEM", "range reserved by the platform");
      if (noReplace && this.mapped(addr, addr + length)) fail("EEXIST");
      return addr;
    }
    if (addr !== 0) {
      const hint = pageDown(addr);
      if (
        hint >= MMAP_MIN_ADDR &&
        hint + length <= TASK_SIZE &&
        !this.mapped(hint, hint + length) &&
        !this.isReserved(hint, hint + length)
      )
        return hint;
    }
    return this.findFree(length, this.layout.mmapBase);
  }

  /** Create a mapping of fresh zeroed memory (what anonymous and copied-file mappings start as). */
  mapAnonymous(addr: number, length: number, prot: number, flags: number, name?: string): number {
    if (length <= 0) fail("EINVAL", "zero length");
    if (prot & ~PROT_ALL) fail("EINVAL", "unknown protection bits");
    const type = flags & MAP_SHARED_VALIDATE;
    if (type !== MAP_SHARED && type !== MAP_PRIVATE && type !== MAP_SHARED_VALIDATE)
      fail("EINVAL", "neither MAP_SHARED nor MAP_PRIVATE");
    const len = pageUp(length);
    if (len > TASK_SIZE) fail("ENOMEM");
    const fixed = (flags & MAP_FIXED) !== 0;
    const noReplace = (flags & MAP_FIXED_NOREPLACE) !== 0;
    const start = this.place(addr, len, fixed, noReplace);
    const off = this.mem.alloc(len);
    const v: Vma = { start, end: start + len, prot, shared: type !== MAP_PRIVATE, off };
    if (name !== undefined) v.name = name;
    try {
      // MAP_FIXED replaces atomically in the host; our list just forgets the old pages.
      this.host.map(start, len, prot, off);
    } catch (e) {
      this.mem.release(off, len);
      throw e;
    }
    if (fixed) this.carve(start, start + len, true);
    this.insert(v);
    return start;
  }

  /**
   * A shared mapping of memory-file space that another owner holds (a file's shared pages,
   * mm/shared-files.ts): the mapping becomes one more owner of [off, off+length), so the
   * pages live as long as any mapping or the file keeps them.
   */
  mapShared(addr: number, length: number, prot: number, flags: number, off: number, name?: string): number {
    if (length <= 0) fail("EINVAL", "zero length");
    if (prot & ~PROT_ALL) fail("EINVAL", "unknown protection bits");
    const len = pageUp(length);
    if (len > TASK_SIZE) fail("ENOMEM");
    const fixed = (flags & MAP_FIXED) !== 0;
    const start = this.place(addr, len, fixed, (flags & MAP_FIXED_NOREPLACE) !== 0);
    this.mem.share(off, len);
    const v: Vma = { start, end: start + len, prot, shared: true, off };
    if (name !== undefined) v.name = name;
    try {
      this.host.map(start, len, prot, off);
    } catch (e) {
      this.mem.release(off, len);
      throw e;
    }
    if (fixed) this.carve(start, start + len, true);
    this.insert(v);
    return start;
  }

  munmap(addr: number, length: number): void {
    if (addr % PAGE !== 0 || length <= 0) fail("EINVAL");
    const end = addr + pageUp(length);
    if (end > TASK_SIZE) fail("EINVAL");
    if (this.isReserved(addr, end)) fail("EINVAL", "range reserved by the platform");
    if (!this.mapped(addr, end)) return;
    this.carve(addr, end, true);
    this.host.unmap(addr, end - addr);
  }

  mprotect(addr: number, length: number, prot: number): void {
    if (addr % PAGE !== 0) fail("EINVAL");
    // PROT_GROWSDOWN/GROWSUP are accepted and ignored: stacks are mapped at full size.
    const p = prot & ~0x03000000;
    if (p & ~PROT_ALL) fail("EINVAL");
    const end = addr + pageUp(length);
    if (end === addr) return;
    if (end > TASK_SIZE || !this.fullyMapped(addr, end)) fail("ENOMEM");
    this.splitAt(addr);
    this.splitAt(end);
    for (let i = this.indexAfter(addr); i < this.vmas.length && this.vmas[i]!.start < end; i++)
      this.vmas[i]!.prot = p;
    this.host.protect(addr, end - addr, p);
    this.coalesce(addr, end);
  }

  /** brk(2): returns the new break, or the old one when the request cannot be met. */
  brk(addr: number): number {
    if (addr < this.brkStart) return this.brkEnd;
    const oldTop = pageUp(this.brkEnd);
    const newTop = pageUp(addr);
    try {
      if (newTop > oldTop) {
        if (this.mapped(oldTop, newTop) || this.isReserved(oldTop, newTop)) return this.brkEnd;
        this.mapAnonymous(oldTop, newTop - oldTop, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, "[heap]");
        this.coalesce(oldTop - 1, newTop);
      } else if (newTop < oldTop) this.munmap(newTop, oldTop - newTop);
    } catch {
      return this.brkEnd;
    }
    this.brkEnd = addr;
    return addr;
  }

  mremap(old: number, oldLength: number, newLength: number, flags: number, newAddr: number): number {
    if (old % PAGE !== 0) fail("EINVAL");
    if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED)) fail("EINVAL", "unsupported mremap flags");
    if (flags & MREMAP_FIXED && !(flags & MREMAP_MAYMOVE)) fail("EINVAL");
    const oldLen = pageUp(oldLength);
    const newLen = pageUp(newLength);
    if (newLen === 0) fail("EINVAL");
    if (oldLen === 0) fail("EINVAL", "duplicating shared mappings is not supported");
    const fixed = (flags & MREMAP_FIXED) !== 0;
    // Shrinking in place is an munmap of the tail, whatever the mappings look like (as on Linux).
    if (!fixed && newLen <= oldLen) {
      if (newLen < oldLen) this.munmap(old + newLen, oldLen - newLen);
      return old;
    }
    const v = this.find(old);
    if (!v || old + oldLen > v.end) fail("EFAULT");

    if (!fixed) {
      const extraStart = old + oldLen;
      const extraEnd = old + newLen;
      if (
        extraEnd <= TASK_SIZE &&
        !this.mapped(extraStart, extraEnd) &&
        !this.isReserved(extraStart, extraEnd)
      ) {
        this.growInto(v, extraStart, extraEnd);
        return old;
      }
      if (!(flags & MREMAP_MAYMOVE)) fail("ENOMEM");
    } else {
      if (newAddr % PAGE !== 0) fail("EINVAL");
      if (newAddr < old + oldLen && old < newAddr + newLen) fail("EINVAL", "overlapping move");
    }

    // Move: the same memory-file pages appear at the new address, so nothing is copied.
    const keep = Math.min(oldLen, newLen);
    const dest = fixed
      ? this.place(newAddr, newLen, true, false)
      : this.findFree(newLen, this.layout.mmapBase);
    if (fixed) this.munmap(dest, newLen);
    const moved: Vma = { ...v, start: dest, end: dest + keep, off: v.off + (old - v.start) };
    this.host.map(dest, keep, moved.prot, moved.off);
    // Detach the moved pages from the old range without releasing them, then drop the rest.
    this.carve(old, old + keep, false);
    if (oldLen > keep) this.carve(old + keep, old + oldLen, true);
    this.host.unmap(old, oldLen);
    this.insert(moved);
    if (newLen > keep) this.growInto(moved, dest + keep, dest + newLen);
    return dest;
  }

  /** Extend `v` with fresh pages at [start, end) directly above it. */
  private growInto(v: Vma, start: number, end: number): void {
    const off = this.mem.alloc(end - start);
    try {
      this.host.map(start, end - start, v.prot, off);
    } catch (e) {
      this.mem.release(off, end - start);
      throw e;
    }
    const extra: Vma = { start, end, prot: v.prot, shared: v.shared, off };
    if (v.name !== undefined) extra.name = v.name;
    this.insert(extra);
    this.coalesce(v.start, end);
  }

  madvise(addr: number, length: number, advice: number): void {
    if (addr % PAGE !== 0 || length < 0) fail("EINVAL");
    const end = addr + pageUp(length);
    if (end === addr) return;
    if (!this.fullyMapped(addr, end)) fail("ENOMEM");
    if (advice !== MADV_DONTNEED && advice !== MADV_FREE && advice !== MADV_REMOVE) return;
    for (let i = this.indexAfter(addr); i < this.vmas.length && this.vmas[i]!.start < end; i++) {
      const v = this.vmas[i]!;
      // A shared mapping keeps its contents on DONTNEED; only private pages go back to zero.
      if (v.shared && advice !== MADV_REMOVE) continue;
      const s = Math.max(v.start, addr);
      const e = Math.min(v.end, end);
      this.mem.zeroPages(v.off + (s - v.start), e - s);
    }
  }

  /**
   * Walk memory-file views covering [addr, addr+length), checking the protections `access`
   * needs; EFAULT for any byte that is unmapped or forbidden (before touching anything).
   */
  spans(addr: number, length: number, access: Access, fn: (bytes: Uint8Array, pos: number) => void): void {
    if (length === 0) return;
    if (!Number.isSafeInteger(addr) || addr < 0 || addr + length > TASK_SIZE) fail("EFAULT");
    const need = access === "read" ? PROT_READ : access === "write" ? PROT_WRITE : 0;
    const pieces: Array<[number, number, number]> = [];
    let at = addr;
    const end = addr + length;
    for (let i = this.indexAfter(addr); at < end; i++) {
      const v = this.vmas[i];
      if (!v || v.start > at || (v.prot & need) !== need) fail("EFAULT");
      const n = Math.min(end, v.end) - at;
      pieces.push([v.off + (at - v.start), n, at - addr]);
      at += n;
    }
    for (const [off, n, pos] of pieces) this.mem.spans(off, n, (b, p) => fn(b, pos + p));
  }

  /**
   * The 16-bit value at addr whatever its protection, or undefined if unmapped: a cheap
   * look at the instruction stream on every syscall.
   */
  peekU16(addr: number): number | undefined {
    const v = this.find(addr);
    const w = v && addr + 1 < v.end ? v : this.find(addr + 1);
    if (!v || !w) return undefined;
    return this.mem.byte(v.off + (addr - v.start)) | (this.mem.byte(w.off + (addr + 1 - w.start)) << 8);
  }

  read(addr: number, length: number, access: Access = "read"): Buffer {
    const out = Buffer.allocUnsafe(length);
    this.spans(addr, length, access, (b, pos) => out.set(b, pos));
    return out;
  }

  write(addr: number, data: Uint8Array, access: Access = "write"): void {
    this.spans(addr, data.length, access, (b, pos) => b.set(data.subarray(pos, pos + b.length)));
  }

  zero(addr: number, length: number, access: Access = "write"): void {
    this.spans(addr, length, access, (b) => b.fill(0));
  }

  /** A NUL-terminated string of at most `max` bytes (ENAMETOOLONG beyond). */
  /** A NUL-terminated string of at most `max` bytes with its NUL; longer: `tooLong` (each call's own errno). */
  readCString(
    addr: number,
    max = 4096,
    encoding: BufferEncoding = "utf8",
    tooLong: ErrnoName = "ENAMETOOLONG",
  ): string {
    const parts: Buffer[] = [];
    let at = addr;
    let total = 0;
    while (total < max) {
      // Read page by page so a string ending just before an unmapped page is fine.
      const n = Math.min(PAGE - (at % PAGE), max - total);
      const chunk = this.read(at, n);
      const z = chunk.indexOf(0);
      if (z >= 0) {
        parts.push(chunk.subarray(0, z));
        return Buffer.concat(parts).toString(encoding);
      }
      parts.push(chunk);
      total += n;
      at += n;
    }
    return fail(tooLong);
  }

  readU64(addr: number): bigint {
    return this.read(addr, 8).readBigUInt64LE(0);
  }

  writeU64(addr: number, v: bigint | number, access: Access = "write"): void {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
    this.write(addr, b, access);
  }

  readU32(addr: number): number {
    return this.read(addr, 4).readUInt32LE(0);
  }

  writeU32(addr: number, v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v >>> 0);
    this.write(addr, b);
  }

  /**
   * fork(2) at the memory level: a new address space over the same memory file, installed
   * in the host address space `into` (fresh, empty). Shared mappings map the same file
   * pages; private ones get new file space holding a copy of their bytes, copied eagerly
   * but only where pages were ever written, so a large reserved-but-untouched mapping
   * costs nothing. On failure nothing of the copy is kept.
   */
  fork(
    into: Pick<HostAddressSpace, "map" | "unmap" | "protect" | "reserved"> &
      Partial<Pick<HostAddressSpace, "hostPid" | "release">>,
  ): AddressSpace {
    const child = new AddressSpace(this.mem, into, into.reserved, this.layout);
    child.brkStart = this.brkStart;
    child.brkEnd = this.brkEnd;
    try {
      for (const v of this.vmas) {
        const len = v.end - v.start;
        let off = v.off;
        if (v.shared) this.mem.share(v.off, len);
        else {
          off = this.mem.alloc(len);
          try {
            this.mem.copy(v.off, off, len);
          } catch (e) {
            this.mem.release(off, len);
            throw e;
          }
        }
        // In the list before the host call, so a failure below releases this one too.
        child.vmas.push({ ...v, off });
        into.map(v.start, len, v.prot, off);
      }
    } catch (e) {
      child.releaseAll();
      throw e;
    }
    return child;
  }

  ref(): this {
    this.users++;
    return this;
  }

  /**
   * A task stopped using it; after the last, its host address space is released (every host
   * thread in it ends) and its file space goes back to the memory file.
   */
  unref(): void {
    if (--this.users !== 0) return;
    this.host.release?.();
    this.releaseAll();
  }

  /** The host process that backs it (its CPU time is the process's): 0 without one. */
  get hostPid(): number {
    return this.host.hostPid ?? 0;
  }

  /** Everything is torn down with the address-space process; this only frees file space. */
  releaseAll(): void {
    for (const v of this.vmas.splice(0)) this.mem.release(v.off, v.end - v.start);
  }
}
