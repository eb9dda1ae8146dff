// eventfd's files: a 64-bit counter that write(2) adds to and read(2) takes (all of it, or
// one at a time in semaphore mode), with Linux's limits: a read of 0 and a write that would
// pass 2^64-2 wait (EAGAIN here; kernel/blocking-io.ts blocks on the queue), and poll says
// which way it can go.
import { fail } from "../errno.js";
import { type FileDescription, type FileStat, POLLIN, POLLOUT } from "../kernel/fdtable.js";
import { WaitQueue } from "../kernel/wait.js";
import { makedev } from "./stat.js";

/** The largest value the counter holds: 2^64 - 2 (2^64 - 1 marks an overflow on Linux). */
const MAX = 0xffff_ffff_ffff_fffen;
const ANON_INODE_DEV = makedev(0, 13);
let nextIno = 1;

export class EventFd implements FileDescription {
  readonly queue = new WaitQueue();
  /** What /proc/<pid>/fd shows, as on Linux. */
  readonly path = "anon_inode:[eventfd]";
  private readonly ino = nextIno++;

  constructor(
    private count: bigint,
    public flags: number,
    readonly semaphore: boolean,
  ) {}

  /** The counter, for /proc/<pid>/fdinfo (eventfd-count). */
  get value(): bigint {
    return this.count;
  }

  read(dst: Uint8Array): number {
    if (dst.length < 8) fail("EINVAL");
    if (this.count === 0n) fail("EAGAIN");
    const took = this.semaphore ? 1n : this.count;
    this.count -= took;
    Buffer.from(dst.buffer, dst.byteOffset, 8).writeBigUInt64LE(took);
    this.queue.notify(POLLOUT);
    return 8;
  }

  write(src: Buffer): number {
    // Exactly one counter's worth, as the host's Linux takes it (older ones took more and used 8).
    if (src.length !== 8) fail("EINVAL");
    const add = src.readBigUInt64LE(0);
    if (add === 0xffff_ffff_ffff_ffffn) fail("EINVAL");
    if (add > MAX - this.count) fail("EAGAIN");
    this.count += add;
    if (add > 0n) this.queue.notify(POLLIN);
    return 8;
  }

  poll(): number {
    return (this.count > 0n ? POLLIN : 0) | (this.count < MAX ? POLLOUT : 0);
  }

  stat(): FileStat {
    // An anonymous inode: no file type, owner read and write.
    return {
      mode: 0o600,
      size: 0,
      ino: this.ino,
      dev: ANON_INODE_DEV,
      rdev: 0,
      nlink: 1,
      uid: 0,
      gid: 0,
      blksize: 4096,
    };
  }
}
