// The sandbox's stdio: host Node streams wrapped as open file descriptions. They look like
// pipes to the application (S_IFIFO, not a terminal).
import { once } from "node:events";
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

const O_RDONLY = 0;
const O_WRONLY = 1;
let nextIno = 1;

function pipeStat(ino: number): FileStat {
  return { mode: S_IFIFO | 0o600, size: 0, ino, dev: 0, rdev: 0, nlink: 1, uid: 0, gid: 0, blksize: 4096 };
}

/** Reads from a host Readable; waits (without blocking the kernel) until data or end. */
export class StreamInput implements FileDescription {
  flags = O_RDONLY;
  private readonly ino = nextIno++;
  private pending: Buffer | undefined;
  private ended = false;
  private failed: Error | undefined;
  private listening = false;
  private changed: Promise<void> | undefined;

  constructor(private readonly stream: Readable | undefined) {
    if (!stream) this.ended = true;
  }

  private listen(): void {
    if (this.listening || !this.stream) return;
    this.listening = true;
    this.stream.on("end", this.onEnd);
    this.stream.on("error", this.onError);
  }
  private readonly onEnd = (): void => {
    this.ended = true;
  };
  private readonly onError = (e: Error): void => {
    this.failed = e;
  };

  async read(dst: Uint8Array): Promise<number> {
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
      const c = this.stream.read() as Buffer | string | null;
      if (c !== null) {
        this.pending = typeof c === "string" ? Buffer.from(c) : c;
        continue;
      }
      await this.whenChanged();
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

  whenChanged(): Promise<void> {
    const s = this.stream;
    if (!s || this.poll() !== 0) return Promise.resolve();
    // One wait at a time, shared: poll() re-asks every slice while nothing changes, and a
    // promise (with its listeners) per ask would pile up on the stream until the next byte.
    this.changed ??= new Promise<void>((resolve) => {
      const done = (): void => {
        s.off("readable", done);
        s.off("end", done);
        s.off("error", done);
        this.changed = undefined;
        resolve();
      };
      s.on("readable", done);
      s.on("end", done);
      s.on("error", done);
    });
    return this.changed;
  }

  ioctl(): number {
    return fail("ENOTTY");
  }

  stat(): FileStat {
    return pipeStat(this.ino);
  }

  release(): void {
    if (this.listening && this.stream) {
      this.stream.off("end", this.onEnd);
      this.stream.off("error", this.onError);
    }
  }
}

/** Writes to a host Writable, waiting for 'drain' when the stream pushes back. */
export class StreamOutput implements FileDescription {
  flags = O_WRONLY;
  private readonly ino = nextIno++;

  private broken = false;

  constructor(private readonly stream: Writable) {
    // A reader that went away must show up as EPIPE in the application, not crash the kernel.
    stream.on("error", this.onError);
  }
  private readonly onError = (): void => {
    this.broken = true;
  };

  async write(src: Buffer): Promise<number> {
    const s = this.stream;
    if (this.broken || s.destroyed || s.writableEnded) fail("EPIPE");
    if (!s.write(src)) {
      try {
        await Promise.race([once(s, "drain"), once(s, "close")]);
      } catch {
        fail("EPIPE");
      }
    }
    return src.length;
  }

  release(): void {
    this.stream.off("error", this.onError);
  }

  /** Writable until the reader went away; back-pressure is absorbed by write() waiting. */
  poll(): number {
    return this.broken || this.stream.destroyed ? POLLERR : POLLOUT;
  }

  ioctl(): number {
    return fail("ENOTTY");
  }

  stat(): FileStat {
    return pipeStat(this.ino);
  }
}
