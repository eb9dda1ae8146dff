// The sandbox's stdio: host Node streams wrapped as open file descriptions. They look like
// pipes to the application (S_IFIFO, not a terminal).
import type { Readable, Writable } from "node:stream";
import { fail } from "../errno.js";
import {
  type FileDescription,
  type FileStat,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLOUT,
  S_IFIFO,
} from "./fdtable.js";
import { WaitQueue } from "./wait.js";

const O_RDONLY = 0;
const O_WRONLY = 1;
let nextIno = 1;

function pipeStat(ino: number): FileStat {
  return { mode: S_IFIFO | 0o600, size: 0, ino, dev: 0, rdev: 0, nlink: 1, uid: 0, gid: 0, blksize: 4096 };
}

/**
 * Reads from a host Readable. It never waits itself: with nothing buffered, read fails with
 * EAGAIN and the syscall blocks on `queue`, which the stream's readable, end and error events
 * notify (listened to from the first read or poll on).
 */
export class StreamInput implements FileDescription {
  flags = O_RDONLY;
  readonly queue = new WaitQueue();
  private readonly ino = nextIno++;
  private pending: Buffer | undefined;
  private ended = false;
  private failed: Error | undefined;
  private listening = false;

  constructor(private readonly stream: Readable | undefined) {
    if (!stream) this.ended = true;
  }

  private listen(): void {
    if (this.listening || !this.stream) return;
    this.listening = true;
    this.stream.on("readable", this.onReadable);
    this.stream.on("end", this.onEnd);
    this.stream.on("error", this.onError);
  }
  private readonly onReadable = (): void => {
    this.queue.notify(POLLIN);
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.queue.notify(POLLIN | POLLHUP);
  };
  private readonly onError = (e: Error): void => {
    this.failed = e;
    this.queue.notify(POLLIN | POLLERR);
  };

  read(dst: Uint8Array): number {
    if (dst.length === 0) return 0;
    this.listen();
    for (;;) {
      if (this.pending) {
        const n = Math.min(dst.length, this.pending.length);
        dst.set(this.pending.subarray(0, n));
        this.pending = n < this.pending.length ? this.pending.subarray(n) : undefined;
        return n;
      }
      if (this.failed) fail("EIO", this.failed.message);
      if (this.ended || !this.stream || this.stream.readableEnded) return 0;
      // null: nothing buffered; the stream emits 'readable' once more comes (or it ends).
      const c = this.stream.read() as Buffer | string | null;
      if (c === null) return fail("EAGAIN");
      this.pending = typeof c === "string" ? Buffer.from(c) : c;
    }
  }

  /** Readable with data buffered here or in the stream; hung up at its end. */
  poll(): number {
    this.listen();
    if (this.pending || (this.stream?.readableLength ?? 0) > 0) return POLLIN;
    if (this.failed) return POLLERR;
    if (this.ended || !this.stream || this.stream.readableEnded) return POLLHUP;
    return 0;
  }

  ioctl(): number {
    return fail("ENOTTY");
  }

  stat(): FileStat {
    return pipeStat(this.ino);
  }

  release(): void {
    if (this.listening && this.stream) {
      this.stream.off("readable", this.onReadable);
      this.stream.off("end", this.onEnd);
      this.stream.off("error", this.onError);
    }
  }
}

/**
 * Writes to a host Writable. The stream takes each write whole; while it pushes back (over
 * its high-water mark) the next write fails with EAGAIN and the syscall blocks on `queue`
 * until 'drain' (or the stream's end) notifies it.
 */
export class StreamOutput implements FileDescription {
  flags = O_WRONLY;
  readonly queue = new WaitQueue();
  private readonly ino = nextIno++;

  private broken = false;

  constructor(private readonly stream: Writable) {
    // A reader that went away must show up as EPIPE in the application, not crash the kernel.
    stream.on("error", this.onError);
    stream.on("drain", this.onDrain);
    stream.on("close", this.onClose);
  }
  private readonly onError = (): void => {
    this.broken = true;
    this.queue.notify(POLLOUT | POLLERR);
  };
  private readonly onDrain = (): void => {
    this.queue.notify(POLLOUT);
  };
  private readonly onClose = (): void => {
    this.queue.notify(POLLOUT | POLLERR);
  };

  private gone(): boolean {
    const s = this.stream;
    return this.broken || s.destroyed || s.writableEnded;
  }

  write(src: Buffer): number {
    if (this.gone()) fail("EPIPE");
    if (this.stream.writableNeedDrain) fail("EAGAIN");
    this.stream.write(src);
    return src.length;
  }

  release(): void {
    this.stream.off("error", this.onError);
    this.stream.off("drain", this.onDrain);
    this.stream.off("close", this.onClose);
  }

  /** Writable unless the stream pushes back; an error once the reader went away. */
  poll(): number {
    if (this.gone()) return POLLERR;
    return this.stream.writableNeedDrain ? 0 : POLLOUT;
  }

  ioctl(): number {
    return fail("ENOTTY");
  }

  stat(): FileStat {
    return pipeStat(this.ino);
  }
}
