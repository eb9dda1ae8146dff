// pipe2(2): a bounded in-kernel buffer between a read end and a write end. Reads wait for
// data (a promise, so the kernel keeps running other work), return 0 once every writer is
// gone; writes wait for room and fail with EPIPE once every reader is gone (the caller
// raises SIGPIPE). Writes of at most PIPE_BUF bytes are never interleaved with others.
import { fail } from "../errno.js";
import { type FileDescription, type FileStat, POLLERR, POLLHUP, POLLIN, POLLOUT } from "../kernel/fdtable.js";
import { makedev, nowNs, S_IFIFO } from "./stat.js";

export const PIPE_BUF = 4096;
export const PIPE_CAPACITY = 65536;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_NONBLOCK = 0o4000;

/** pipefs: the device every pipe's inode lives on. */
const PIPEFS_DEV = makedev(0, 12);
let nextPipeIno = 1;

export class Pipe {
  readonly ino = nextPipeIno++;
  private chunks: Buffer[] = [];
  private bytes = 0;
  readers = 0;
  writers = 0;
  private waiters: Array<() => void> = [];
  readonly ctimeNs = nowNs();
  mtimeNs = this.ctimeNs;
  atimeNs = this.ctimeNs;

  constructor(readonly capacity = PIPE_CAPACITY) {}

  get size(): number {
    return this.bytes;
  }

  /** Wake everyone waiting; each re-checks its condition. */
  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  take(dst: Uint8Array): number {
    let n = 0;
    while (n < dst.length && this.chunks.length > 0) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, dst.length - n);
      dst.set(c.subarray(0, k), n);
      n += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.bytes -= n;
    if (n > 0) {
      this.atimeNs = nowNs();
      this.wake();
    }
    return n;
  }

  put(src: Buffer): void {
    // Copy: the caller's buffer may be reused once write() returns.
    this.chunks.push(Buffer.from(src));
    this.bytes += src.length;
    this.mtimeNs = nowNs();
    this.wake();
  }

  stat(): FileStat {
    return {
      mode: S_IFIFO | 0o600,
      size: this.bytes,
      ino: this.ino,
      dev: PIPEFS_DEV,
      rdev: 0,
      nlink: 1,
      uid: 0,
      gid: 0,
      blksize: 4096,
    };
  }
}

export class PipeReader implements FileDescription {
  private closed = false;

  /** Readable with data; hung up once every writer is gone (read then returns 0). */
  poll(): number {
    return (this.pipe.size > 0 ? POLLIN : 0) | (this.pipe.writers === 0 ? POLLHUP : 0);
  }

  whenChanged(): Promise<void> {
    return this.pipe.wait();
  }
  constructor(
    readonly pipe: Pipe,
    public flags: number = O_RDONLY,
  ) {
    pipe.readers++;
    pipe.wake();
  }

  read(dst: Uint8Array): number | Promise<number> {
    if (dst.length === 0) return 0;
    const n = this.pipe.take(dst);
    if (n > 0 || this.pipe.writers === 0) return n;
    if (this.flags & O_NONBLOCK) fail("EAGAIN");
    return this.readSlow(dst);
  }

  private async readSlow(dst: Uint8Array): Promise<number> {
    for (;;) {
      await this.pipe.wait();
      const n = this.pipe.take(dst);
      if (n > 0 || this.pipe.writers === 0) return n;
    }
  }

  write(): number {
    return fail("EBADF");
  }

  stat(): FileStat {
    return this.pipe.stat();
  }

  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.pipe.readers--;
    this.pipe.wake();
  }
}

export class PipeWriter implements FileDescription {
  private closed = false;

  /** Writable while there is room; an error once every reader is gone (write gives EPIPE). */
  poll(): number {
    if (this.pipe.readers === 0) return POLLERR;
    return this.pipe.size < this.pipe.capacity ? POLLOUT : 0;
  }

  whenChanged(): Promise<void> {
    return this.pipe.wait();
  }
  constructor(
    readonly pipe: Pipe,
    public flags: number = O_WRONLY,
  ) {
    pipe.writers++;
    pipe.wake();
  }

  read(): number {
    return fail("EBADF");
  }

  write(src: Buffer): number | Promise<number> {
    if (this.pipe.readers === 0) fail("EPIPE");
    if (src.length === 0) return 0;
    const room = this.pipe.capacity - this.pipe.size;
    // Small writes go in whole or not at all; large ones may be split.
    if (src.length <= room) {
      this.pipe.put(src);
      return src.length;
    }
    if (this.flags & O_NONBLOCK) {
      if (src.length <= PIPE_BUF || room === 0) fail("EAGAIN");
      this.pipe.put(src.subarray(0, room));
      return room;
    }
    return this.writeSlow(src);
  }

  private async writeSlow(src: Buffer): Promise<number> {
    let done = 0;
    while (done < src.length) {
      if (this.pipe.readers === 0) {
        if (done > 0) return done;
        fail("EPIPE");
      }
      const room = this.pipe.capacity - this.pipe.size;
      const left = src.length - done;
      if (room > 0 && (left > PIPE_BUF || left <= room)) {
        const k = Math.min(room, left);
        this.pipe.put(src.subarray(done, done + k));
        done += k;
        continue;
      }
      await this.pipe.wait();
    }
    return done;
  }

  stat(): FileStat {
    return this.pipe.stat();
  }

  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.pipe.writers--;
    this.pipe.wake();
  }
}

/** pipe2(2): the read end and the write end (O_NONBLOCK in `flags` applies to both). */
export function makePipe(flags = 0): [PipeReader, PipeWriter] {
  const p = new Pipe();
  return [
    new PipeReader(p, O_RDONLY | (flags & O_NONBLOCK)),
    new PipeWriter(p, O_WRONLY | (flags & O_NONBLOCK)),
  ];
}

/** A FIFO opened O_RDWR: both ends in one description (it never waits to open). */
export class PipeDuplex implements FileDescription {
  private readonly r: PipeReader;
  private readonly w: PipeWriter;
  constructor(
    readonly pipe: Pipe,
    public flags: number,
  ) {
    this.r = new PipeReader(pipe, flags);
    this.w = new PipeWriter(pipe, flags);
  }
  read(dst: Uint8Array): number | Promise<number> {
    this.r.flags = this.flags;
    return this.r.read(dst);
  }
  write(src: Buffer): number | Promise<number> {
    this.w.flags = this.flags;
    return this.w.write(src);
  }
  poll(): number {
    return this.r.poll() | this.w.poll();
  }
  whenChanged(): Promise<void> {
    return this.pipe.wait();
  }
  stat(): FileStat {
    return this.pipe.stat();
  }
  release(): void {
    this.r.release();
    this.w.release();
  }
}

/**
 * Open a named FIFO (Linux's fifo_open): a reader waits for a writer and a writer for a
 * reader, unless O_NONBLOCK (then a lone writer gets ENXIO); O_RDWR never waits. The pipe
 * lives while any end is open, so data left by writers who all closed is dropped.
 */
export async function openFifo(fifo: { pipe: Pipe | null }, flags: number): Promise<FileDescription> {
  let pipe = fifo.pipe;
  if (!pipe || (pipe.readers === 0 && pipe.writers === 0)) {
    pipe = new Pipe();
    fifo.pipe = pipe;
  }
  const acc = flags & 3;
  if (acc === 2) return new PipeDuplex(pipe, flags);
  if (acc === O_WRONLY) {
    if (pipe.readers === 0 && flags & O_NONBLOCK) fail("ENXIO");
    const w = new PipeWriter(pipe, flags);
    while (pipe.readers === 0) await pipe.wait();
    return w;
  }
  const r = new PipeReader(pipe, flags);
  if (!(flags & O_NONBLOCK)) while (pipe.writers === 0) await pipe.wait();
  return r;
}
