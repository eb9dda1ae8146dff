// copy_file_range between two regular files: Linux's checks (flags 0, regular files only, the
// input readable, the output writable and not O_APPEND, no overlap within one file), then up
// to `len` bytes copied in 1 MiB steps at the given offsets (updated) or the file positions
// (moved). A short count is allowed, 0 at the input's end.
import { fail } from "../errno.js";
import type { FileDescription } from "../kernel/fdtable.js";
import { canRead, canWrite } from "../vfs/file.js";
import { O_APPEND } from "../vfs/flags.js";
import { RegularFile, statOf } from "../vfs/index.js";
import { S_IFDIR, S_IFMT, S_IFREG } from "../vfs/stat.js";
import { addr, type Handler, int, size, uint } from "./types.js";

const STEP = 1 << 20;
/** Linux copies at most this much in one call (MAX_RW_COUNT). */
const MAX_COPY = 0x7ffff000;

function regular(d: FileDescription): RegularFile {
  const type = statOf(d).mode & S_IFMT;
  if (type === S_IFDIR) fail("EISDIR");
  if (type !== S_IFREG || !(d instanceof RegularFile)) fail("EINVAL");
  return d;
}

function offsetAt(t: Parameters<Handler>[0], ptr: number, pos: number): number {
  if (ptr === 0) return pos;
  const off = BigInt.asIntN(64, t.mm.readU64(ptr));
  if (off < 0n) fail("EINVAL");
  return Number(off);
}

export const copyFileRange: Handler = (t, a) => {
  const fin = t.fds.get(int(a[0]));
  const fout = t.fds.get(int(a[2]));
  const [inPtr, outPtr] = [addr(a[1]), addr(a[3])];
  const len = Math.min(size(a[4], "EINVAL"), MAX_COPY);
  if (uint(a[5]) !== 0) fail("EINVAL");
  const src = regular(fin);
  const dst = regular(fout);
  if (!canRead(src.flags)) fail("EBADF");
  if (!canWrite(dst.flags) || dst.flags & O_APPEND) fail("EBADF");
  let inOff = offsetAt(t, inPtr, src.pos);
  let outOff = offsetAt(t, outPtr, dst.pos);
  if (inOff + len > Number.MAX_SAFE_INTEGER || outOff + len > Number.MAX_SAFE_INTEGER) fail("EOVERFLOW");
  // The same file: the two ranges may not overlap.
  if (src.inode === dst.inode && inOff < outOff + len && outOff < inOff + len) fail("EINVAL");
  let done = 0;
  const buf = Buffer.allocUnsafe(Math.min(len, STEP));
  while (done < len) {
    const n = src.pread(buf.subarray(0, Math.min(buf.length, len - done)), inOff);
    if (n === 0) break;
    const w = dst.pwrite(buf.subarray(0, n), outOff);
    done += w;
    inOff += w;
    outOff += w;
    if (w < n) break;
  }
  if (inPtr !== 0) t.mm.writeU64(inPtr, BigInt(inOff));
  else src.pos = inOff;
  if (outPtr !== 0) t.mm.writeU64(outPtr, BigInt(outOff));
  else dst.pos = outOff;
  return done;
};
