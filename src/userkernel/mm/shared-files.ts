// The shared pages of files that live in the kernel's memory (tmpfs, /dev/shm, the overlay):
// the first MAP_SHARED mapping of a file gives it memory-file space holding its bytes, and
// every later MAP_SHARED mapping of that file, by any process, maps the same space, so what
// one writes the others see (shm_open, sem_open, a file shared between processes).
//
// The space covers the file from offset 0 to the end of the largest range mapped so far. A
// mapping that reaches further gets a bigger copy; mappings made before keep the old one
// (they no longer see the new ones' writes): programs size a shared file (ftruncate) before
// they map it, so this does not happen in practice. read(2), write(2) and truncate on the
// file stay coherent with the pages (readShared, writeShared, truncateShared: the VFS calls them).
import { type MemoryFile, pageUp } from "./memfile.js";

interface Segment {
  /** Memory-file offset of the file's byte 0. */
  off: number;
  /** Bytes covered (page multiple). */
  len: number;
}

/** One table per memory file (that is, per kernel); files are keyed by their inode object. */
const tables = new WeakMap<MemoryFile, WeakMap<object, Segment>>();

/** The shared pages of each file, for the file's own reads and writes. */
const byFile = new WeakMap<object, { mem: MemoryFile; seg: Segment }>();

/** A file that is gone (no name, no descriptor, no mapping) gives its pages back. */
const gone = new FinalizationRegistry<{ mem: MemoryFile; seg: Segment }>(({ mem, seg }) => {
  try {
    mem.release(seg.off, seg.len);
  } catch {
    // The kernel (and its memory file) ended first.
  }
});

/**
 * The memory-file offset of `file`'s byte `offset`, with [offset, offset+length) backed by
 * its shared pages. `fill(dst, pos)` reads the file's bytes at `pos` into `dst` (returning
 * how many, 0 at the end); it runs when the space is made.
 */
export function sharedFilePages(
  mem: MemoryFile,
  file: object,
  offset: number,
  length: number,
  fill: (dst: Uint8Array, pos: number) => number,
): number {
  let table = tables.get(mem);
  if (!table) {
    table = new WeakMap();
    tables.set(mem, table);
  }
  const need = pageUp(offset + length);
  const seg = table.get(file);
  if (seg && seg.len >= need) return seg.off + offset;
  const off = mem.alloc(need);
  try {
    if (seg) mem.copy(seg.off, off, seg.len);
    // The file's bytes where no older copy had them.
    let pos = seg ? seg.len : 0;
    mem.spans(off + pos, need - pos, (dst) => {
      for (let got = 0; got < dst.length; ) {
        const n = fill(dst.subarray(got), pos);
        if (n <= 0) return;
        got += n;
        pos += n;
      }
    });
  } catch (e) {
    mem.release(off, need);
    throw e;
  }
  // The table's hold on the old copy goes: mappings of it keep it alive as long as they last.
  if (seg) {
    mem.release(seg.off, seg.len);
    seg.off = off;
    seg.len = need;
  } else {
    const made = { off, len: need };
    table.set(file, made);
    byFile.set(file, { mem, seg: made });
    gone.register(file, { mem, seg: made });
  }
  return off + offset;
}

/**
 * Copy `file`'s shared bytes over [offset, offset+length) of the fresh memory-file space at
 * `dst`, where it has shared pages: a private mapping made after a shared one starts from
 * what the shared mappings wrote. Returns how many bytes came from there (from `offset` on).
 */
export function copySharedFilePages(
  mem: MemoryFile,
  file: object,
  offset: number,
  length: number,
  dst: number,
): number {
  const seg = tables.get(mem)?.get(file);
  if (!seg || offset >= seg.len) return 0;
  const n = Math.min(length, seg.len - offset);
  mem.copy(seg.off + offset, dst, n);
  return n;
}

/** Run `fn` over the memory-file bytes of `file`'s shared pages for [offset, offset+length), where it has them. */
function covered(
  file: object,
  offset: number,
  length: number,
  fn: (bytes: Uint8Array, pos: number) => void,
): void {
  const s = byFile.get(file);
  if (!s || offset >= s.seg.len || length <= 0) return;
  s.mem.spans(s.seg.off + offset, Math.min(length, s.seg.len - offset), fn);
}

/** read(2) got `dst` from `file` at `offset`: what its shared mappings wrote there is the content. */
export function readShared(file: object, offset: number, dst: Uint8Array): void {
  covered(file, offset, dst.length, (b, pos) => dst.set(b, pos));
}

/** write(2) put `src` into `file` at `offset`: its shared mappings see it too. */
export function writeShared(file: object, offset: number, src: Uint8Array): void {
  covered(file, offset, src.length, (b, pos) => b.set(src.subarray(pos, pos + b.length)));
}

/** `file` was truncated to `length`: its shared pages read as zeros past it, as a grown file does. */
export function truncateShared(file: object, length: number): void {
  covered(file, length, Number.MAX_SAFE_INTEGER - length, (b) => b.fill(0));
}

/** Where `file`'s shared pages are in the memory file (undefined: never mapped shared). */
export function sharedSegment(file: object): { off: number; len: number } | undefined {
  const s = byFile.get(file);
  return s ? { off: s.seg.off, len: s.seg.len } : undefined;
}
