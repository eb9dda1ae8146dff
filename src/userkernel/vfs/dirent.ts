// linux_dirent64 records: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name NUL-terminated,
// each record padded to 8 bytes.
import type { DirEntry } from "./inode.js";

export function direntSize(name: string): number {
  return (19 + Buffer.byteLength(name, "latin1") + 1 + 7) & ~7;
}

/**
 * Fill `dst` with records of `entries` starting at index `from`; `d_off` of each record is
 * the index of the next one, so a later call (or lseek to a d_off) resumes there.
 * Returns the bytes written and the index reached.
 */
export function encodeDirents(
  entries: DirEntry[],
  from: number,
  dst: Uint8Array,
): { bytes: number; next: number } {
  const out = Buffer.from(dst.buffer, dst.byteOffset, dst.byteLength);
  let off = 0;
  let i = from;
  for (; i < entries.length; i++) {
    const e = entries[i]!;
    const len = direntSize(e.name);
    if (off + len > out.length) break;
    out.fill(0, off, off + len);
    out.writeBigUInt64LE(BigInt(e.ino), off);
    out.writeBigInt64LE(BigInt(i + 1), off + 8);
    out.writeUInt16LE(len, off + 16);
    out[off + 18] = e.type;
    out.write(e.name, off + 19, "latin1");
    off += len;
  }
  return { bytes: off, next: i };
}

/** Parse records back (for tests and for anyone reading a host directory the same way). */
export function decodeDirents(buf: Uint8Array, len: number): Array<DirEntry & { off: number }> {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Array<DirEntry & { off: number }> = [];
  for (let p = 0; p + 19 <= len; ) {
    const reclen = b.readUInt16LE(p + 16);
    if (reclen < 20) break;
    const end = b.indexOf(0, p + 19);
    out.push({
      ino: Number(b.readBigUInt64LE(p)),
      off: Number(b.readBigInt64LE(p + 8)),
      type: b[p + 18]!,
      name: b.toString("latin1", p + 19, end),
    });
    p += reclen;
  }
  return out;
}
