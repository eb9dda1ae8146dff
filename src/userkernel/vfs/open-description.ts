// A /proc/self/fd/N link's target when the VFS did not make the description (a host
// stream, a pipe): stat answers from the description, open reopens it as Linux does.

import { O_ACCMODE } from "../../sys/file.js";
import { fail } from "../errno.js";
import type { FileDescription } from "../kernel/fdtable.js";
import { type Fs, Inode } from "./inode.js";
import { PipeReader, PipeWriter } from "./pipe.js";
import { nowNs, type Stat } from "./stat.js";

/** A /proc/self/fd/N link to a description the VFS did not make (a host stream, a pipe). */
export class OpenDescriptionInode extends Inode {
  constructor(
    fs: Fs,
    readonly description: FileDescription,
  ) {
    const s = description.stat();
    super(fs, s.mode, s.uid, s.gid, s.ino);
  }
  override stat(): Stat {
    const s = this.description.stat();
    const now = nowNs();
    return { ...s, blocks: 0, atimeNs: now, mtimeNs: now, ctimeNs: now };
  }
  /** Linux opens the pipe anew; other streams are shared, as their file is. */
  reopen(flags: number): FileDescription {
    const d = this.description;
    if (d instanceof PipeReader || d instanceof PipeWriter) {
      const acc = flags & O_ACCMODE;
      if (acc === 0) return new PipeReader(d.pipe, flags);
      if (acc === 1) return new PipeWriter(d.pipe, flags);
      fail("EINVAL");
    }
    return d;
  }
}

/**
 * The `at` of a *at call whose dirfd is not open. Linux looks the dirfd up only when the
 * path needs it: an absolute path ignores it, a relative one (or AT_EMPTY_PATH) is EBADF.
 */
export class ClosedDirfd extends Inode {
  constructor(fs: Fs) {
    super(fs, 0, 0, 0);
  }
}
