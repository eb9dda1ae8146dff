// The memory file: one memfd per kernel holds every byte of its processes' application
// memory (one file, so that processes can share pages). The stubs map ranges of it
// (MAP_SHARED) where the application expects memory; the kernel maps all of it once into
// its own process and reads and writes through typed-array views, so copying to and from
// the application costs no system call.
import * as mman from "../../sys/mman.js";
import { fail } from "../errno.js";

export const PAGE = 4096;
/** Size of one kernel-side view; views above 4 GiB are not possible, smaller ones are cheap. */
const CHUNK = 2 ** 30;

export const pageDown = (n: number): number => n - (n % PAGE);
export const pageUp = (n: number): number => pageDown(n + PAGE - 1);

/**
 * A sandbox's memory budget (`--memory`), shared by the memory files of all its processes:
 * mapping more application memory than it allows fails with ENOMEM (mmap, brk, mremap, and a
 * program too big to load), as under Linux's strict overcommit. What counts is memory mapped,
 * not touched: a program that maps much and uses little reaches the limit sooner than in a
 * cgroup. Files written to tmpfs or the overlay live in the kernel's heap and do not count.
 */
export class MemoryBudget {
  used = 0;
  constructor(readonly limit: number) {}

  charge(n: number): void {
    if (this.used + n > this.limit)
      fail("ENOMEM", `the sandbox's memory budget (${Math.floor(this.limit / 2 ** 20)} MiB) is used up`);
    this.used += n;
  }

  uncharge(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

export class MemoryFile {
  readonly fd: number;
  private readonly base: number;
  private readonly chunks: Uint8Array[] = [];
  /** Free extents [start, end) below `top`, sorted and coalesced. */
  private readonly holes: Array<[number, number]> = [];
  private top = 0;
  private closed = false;
  /**
   * Pages referenced by more than one mapping owner (a shared mapping kept by a forked
   * address space): page index → owners. A page not in here has one owner.
   */
  private readonly refs = new Map<number, number>();

  /**
   * `size` bounds the application's total memory (mapped, not necessarily touched): the file
   * is sparse, so pages cost host memory only once they are written.
   */
  constructor(
    readonly size: number,
    private readonly budget?: MemoryBudget,
  ) {
    if (size % CHUNK !== 0) throw new RangeError(`memory file size must be a multiple of ${CHUNK}`);
    this.fd = mman.memfdCreate("moat-memory");
    try {
      mman.ftruncate(this.fd, size);
      this.base = mman.mmap(
        0,
        size,
        mman.PROT_READ | mman.PROT_WRITE,
        mman.MAP_SHARED | mman.MAP_NORESERVE,
        this.fd,
      );
    } catch (e) {
      mman.close(this.fd);
      throw e;
    }
  }

  /** Reserve `length` bytes (page multiple) of fresh, zero-filled file space. */
  alloc(length: number): number {
    this.budget?.charge(length);
    try {
      return this.allocSpace(length);
    } catch (e) {
      this.budget?.uncharge(length);
      throw e;
    }
  }

  private allocSpace(length: number): number {
    for (let i = 0; i < this.holes.length; i++) {
      const h = this.holes[i]!;
      if (h[1] - h[0] >= length) {
        const off = h[0];
        h[0] += length;
        if (h[0] === h[1]) this.holes.splice(i, 1);
        return off;
      }
    }
    if (this.top + length > this.size) fail("ENOMEM", "memory file full");
    const off = this.top;
    this.top += length;
    return off;
  }

  /** One more owner for file space [off, off+length) (page multiples): a fork's shared mapping. */
  share(off: number, length: number): void {
    for (let p = off / PAGE; p < (off + length) / PAGE; p++) this.refs.set(p, (this.refs.get(p) ?? 1) + 1);
  }

  /**
   * Give file space back; its pages return to the host and read as zeros when reused.
   * Pages another owner still holds (share()) only lose this owner.
   */
  release(off: number, length: number): void {
    if (length === 0) return;
    if (this.refs.size > 0) {
      let run = -1;
      const end = (off + length) / PAGE;
      for (let p = off / PAGE; p <= end; p++) {
        const n = p < end ? this.refs.get(p) : undefined;
        const free = p < end && n === undefined;
        if (n !== undefined) {
          if (n > 2) this.refs.set(p, n - 1);
          else this.refs.delete(p);
        }
        if (free && run < 0) run = p;
        if (!free && run >= 0) {
          this.freeSpace(run * PAGE, (p - run) * PAGE);
          run = -1;
        }
      }
      return;
    }
    this.freeSpace(off, length);
  }

  /**
   * Copy file bytes [from, from+length) to [to, to+length), touching only the populated
   * extents of the source (SEEK_DATA): never-written pages stay holes in the copy too.
   * The destination must be fresh (all zeros), as alloc() gives it.
   */
  copy(from: number, to: number, length: number): void {
    for (const [s, e] of mman.dataExtents(this.fd, from, length)) {
      const n = e - s;
      const dst = to + (s - from);
      this.spans(s, n, (src, pos) => {
        this.spans(dst + pos, src.length, (d, p) => d.set(src.subarray(p, p + d.length)));
      });
    }
  }

  private freeSpace(off: number, length: number): void {
    mman.punchHole(this.fd, off, length);
    this.budget?.uncharge(length);
    let end = off + length;
    let start = off;
    // Insert and coalesce with neighbours.
    let i = 0;
    while (i < this.holes.length && this.holes[i]![1] < start) i++;
    while (i < this.holes.length && this.holes[i]![0] <= end) {
      const h = this.holes[i]!;
      start = Math.min(start, h[0]);
      end = Math.max(end, h[1]);
      this.holes.splice(i, 1);
    }
    if (end === this.top) this.top = start;
    else this.holes.splice(i, 0, [start, end]);
  }

  /** Zero file bytes (page multiples) without giving up the space. */
  zeroPages(off: number, length: number): void {
    if (length > 0) mman.punchHole(this.fd, off, length);
  }

  /** Bytes of file space in use, holes excluded (for stats and tests). */
  get allocated(): number {
    return this.top - this.holes.reduce((n, h) => n + h[1] - h[0], 0);
  }

  private chunk(i: number): Uint8Array {
    let c = this.chunks[i];
    if (!c) {
      c = new Uint8Array(mman.view(this.base + i * CHUNK, CHUNK));
      this.chunks[i] = c;
    }
    return c;
  }

  /**
   * Call `fn` with views covering file bytes [off, off+length), in order; `pos` is the
   * position of each view within the range. Views alias the application's memory.
   */
  spans(off: number, length: number, fn: (bytes: Uint8Array, pos: number) => void): void {
    if (this.closed) fail("EFAULT", "memory file closed");
    let pos = 0;
    while (pos < length) {
      const o = off + pos;
      const ci = Math.floor(o / CHUNK);
      const within = o - ci * CHUNK;
      const n = Math.min(length - pos, CHUNK - within);
      fn(this.chunk(ci).subarray(within, within + n), pos);
      pos += n;
    }
  }

  /** One byte of the file (no bounds beyond the file size are checked: callers translate first). */
  byte(off: number): number {
    const ci = Math.floor(off / CHUNK);
    return this.chunk(ci)[off - ci * CHUNK]!;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.budget?.uncharge(this.allocated);
    this.chunks.length = 0;
    mman.munmap(this.base, this.size);
    mman.close(this.fd);
  }
}
