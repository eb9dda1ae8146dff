// Memory system calls: brk and the mmap family over the task's AddressSpace.
import { fail } from "../errno.js";
import type { Task } from "../kernel/task.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED_VALIDATE, PROT_WRITE } from "../mm/addrspace.js";
import { PAGE, pageUp } from "../mm/memfile.js";
import { copySharedFilePages, sharedFilePages } from "../mm/shared-files.js";
import { RegularFile } from "../vfs/index.js";
import { checkWritableMapping } from "../vfs/memfd.js";
import { type Args, addr, type Handler, int, long, size } from "./types.js";

const O_ACCMODE = 3;
const O_WRONLY = 1;
const FILE_MAP_CHUNK = 1 << 20;

export const brk: Handler = (t, a: Args) => t.mm.brk(addr(a[0]));

export const mmap: Handler = (t, a) => {
  const [start, length, prot, flags, fd, off] = [
    addr(a[0]),
    size(a[1], "ENOMEM"),
    int(a[2]),
    int(a[3]),
    int(a[4]),
    long(a[5]),
  ];
  if (off % PAGE !== 0 || off < 0) fail("EINVAL");
  if (flags & MAP_ANONYMOUS) return t.mm.mapAnonymous(start, length, prot, flags);
  return mapFile(t, start, length, prot, flags, fd, off);
};

/**
 * A private file mapping is a copy: fresh memory-file pages filled from the file. A shared
 * mapping of a file in the kernel's memory (tmpfs, /dev/shm, the overlay) maps the file's
 * shared pages (mm/shared-files.ts), which every process mapping it shares; writable shared
 * mappings of other files (host streams, /proc) are refused.
 */
async function mapFile(
  t: Task,
  start: number,
  length: number,
  prot: number,
  flags: number,
  fd: number,
  off: number,
) {
  const d = t.fds.get(fd);
  if ((d.flags & O_ACCMODE) === O_WRONLY) fail("EACCES");
  const shared = (flags & MAP_SHARED_VALIDATE) !== MAP_PRIVATE;
  // Linux refuses a writable shared mapping of a descriptor not open for writing first.
  if (shared && prot & PROT_WRITE && (d.flags & O_ACCMODE) !== 2 /* O_RDWR */) fail("EACCES");
  if (length === 0) fail("EINVAL");
  // The path names the mapping in /proc/pid/maps, as the file's dentry does on Linux.
  const name = (d as { path?: string | undefined }).path;
  // A file in the kernel's memory: every shared mapping of it maps the same pages.
  if (shared && d instanceof RegularFile) {
    const f = d;
    if (prot & PROT_WRITE) checkWritableMapping(f.inode);
    const at = sharedFilePages(t.mm.mem, f.inode, off, length, (dst, pos) => f.pread(dst, pos));
    return t.mm.mapShared(start, length, prot, flags, at, name);
  }
  if (shared && prot & PROT_WRITE)
    fail("ENODEV", "writable shared mappings of this kind of file are not supported yet");
  if (!d.pread) fail("ENODEV");
  const at = t.mm.mapAnonymous(start, length, prot, (flags & ~MAP_SHARED_VALIDATE) | MAP_PRIVATE, name);
  // Whole pages: the bytes of the last page past `length` are the file's too, as on Linux.
  const whole = pageUp(length);
  try {
    if (d instanceof RegularFile) {
      fillFromFile(t, at, whole, d, off);
      // What shared mappings of the file wrote is the file's content for a new mapping.
      const v = t.mm.find(at);
      if (v) copySharedFilePages(t.mm.mem, d.inode, off, whole, v.off);
    } else await fillBuffered(t, at, whole, d.pread.bind(d), off);
  } catch (e) {
    // A file that cannot be read must not leave a mapping behind.
    t.mm.munmap(at, length);
    throw e;
  }
  return at;
}

/**
 * A regular file's bytes go straight into the new mapping's memory-file pages (the host's
 * pread writes them), with no buffer in between: what ld.so maps of every library. Its pread
 * is synchronous, so nothing can change the address space while the pages fill. What lies
 * past the end of the file stays zero, as fresh pages are.
 */
function fillFromFile(t: Task, at: number, length: number, f: RegularFile, off: number): void {
  const views: Uint8Array[] = [];
  t.mm.spans(at, length, "force", (b) => views.push(b));
  let pos = off;
  for (const view of views) {
    for (let got = 0; got < view.length; ) {
      const n = f.pread(view.subarray(got, got + FILE_MAP_CHUNK), pos);
      if (n <= 0) return;
      got += n;
      pos += n;
    }
  }
}

/** Any other readable description (/proc files...): through a buffer, checked on every write. */
async function fillBuffered(
  t: Task,
  at: number,
  length: number,
  pread: (dst: Uint8Array, offset: number) => number | Promise<number>,
  off: number,
): Promise<void> {
  const content = Buffer.alloc(Math.min(length, FILE_MAP_CHUNK));
  for (let done = 0; done < length; ) {
    const want = Math.min(length - done, content.length);
    const n = await pread(content.subarray(0, want), off + done);
    if (n <= 0) return; // past the end of the file: the rest of the pages stay zero
    t.mm.write(at + done, content.subarray(0, n), "force");
    done += n;
  }
}

export const munmap: Handler = (t, a) => {
  t.mm.munmap(addr(a[0]), size(a[1]));
  return 0;
};

export const mprotect: Handler = (t, a) => {
  t.mm.mprotect(addr(a[0]), size(a[1], "ENOMEM"), int(a[2]));
  return 0;
};

export const mremap: Handler = (t, a) =>
  t.mm.mremap(addr(a[0]), size(a[1]), size(a[2]), int(a[3]), addr(a[4]));

export const madvise: Handler = (t, a) => {
  t.mm.madvise(addr(a[0]), size(a[1]), int(a[2]));
  return 0;
};

/** Memory is never swapped and always in sync with the (memory) file: nothing to do. */
export const noop: Handler = () => 0;

/**
 * mincore: every page of a mapping counts as resident (the memory file is the backing store
 * and is never swapped out), as gVisor reports it. Linux's checks: a page-aligned start
 * (EINVAL), every page of the range mapped (ENOMEM).
 */
export const mincore: Handler = (t, a) => {
  const start = addr(a[0]);
  const len = size(a[1]);
  if (start % PAGE !== 0) fail("EINVAL");
  const pages = Math.ceil(len / PAGE);
  const end = start + pages * PAGE;
  let at = start;
  for (const v of t.mm.list()) {
    if (v.end <= at) continue;
    if (v.start > at) break;
    at = v.end;
    if (at >= end) break;
  }
  if (at < end) fail("ENOMEM");
  if (pages > 0) t.mm.write(addr(a[2]), Buffer.alloc(pages, 1));
  return 0;
};
