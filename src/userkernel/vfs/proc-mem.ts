// /proc/<pid>/mem: the process's memory as a file whose offsets are addresses. A read or write
// stops at the first page that is not mapped (EIO when that is the first), and ignores the
// pages' protections, as Linux's FOLL_FORCE access through this file does.
import { fail } from "../errno.js";
import { canWrite, VfsFile } from "./file.js";
import type { Inode } from "./inode.js";
import type { ProcessView } from "./proc-types.js";

const SEEK_SET = 0;
const SEEK_CUR = 1;

export class ProcMemFile extends VfsFile {
  private pos = 0;
  constructor(
    inode: Inode,
    flags: number,
    private readonly view: () => ProcessView | undefined,
  ) {
    super(inode, flags);
  }
  private process(): ProcessView {
    const v = this.view();
    if (!v) fail("ESRCH");
    return v;
  }
  pread(dst: Uint8Array, offset: number): number {
    if (dst.length === 0) return 0;
    const b = this.process().memRead(offset, dst.length);
    dst.set(b);
    return b.length;
  }
  read(dst: Uint8Array): number {
    const n = this.pread(dst, this.pos);
    this.pos += n;
    return n;
  }
  pwrite(src: Buffer, offset: number): number {
    if (!canWrite(this.flags)) fail("EBADF");
    if (src.length === 0) return 0;
    return this.process().memWrite(offset, src);
  }
  write(src: Buffer): number {
    const n = this.pwrite(src, this.pos);
    this.pos += n;
    return n;
  }
  /** mem_lseek: SEEK_SET and SEEK_CUR only. */
  seek(offset: number, whence: number): number {
    if (whence === SEEK_SET) this.pos = offset;
    else if (whence === SEEK_CUR) this.pos += offset;
    else fail("EINVAL");
    return this.pos;
  }
}
