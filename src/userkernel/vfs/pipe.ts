// pipe2(2): a bounded in-kernel buffer between a read end and a write end. The ends never
// wait themselves: a read with no data while a writer lives, or a write with no room, fails
// with EAGAIN, and the syscall layer (kernel/blocking-io.ts) blocks the task on the pipe's
// wait queue unless the description is O_NONBLOCK. Reads return 0 once every writer is gone;
// writes fail with EPIPE once every reader is gone (the caller raises SIGPIPE). Writes of at
// most PIPE_BUF bytes are never interleaved with others.
import { fail } from "../errno.js";
import { type FileDescription, type FileStat, POLLERR, POLLHUP, POLLIN, POLLOUT } from "../kernel/fdtable.js";
import type { Wait } from "../kernel/wait.js";
import { WaitQueue } from "../kernel/wait.js";
import { makedev, nowNs, S_IFIFO } from "./stat.js";

export const PIPE_BUF = 4096;
export const PIPE_CAPACITY = 65536;
/** /proc/sys/fs/pipe-max-size's default: the most F_SETPIPE_SZ gives without CAP_SYS_RESOURCE. */
export const PIPE_MAX_SIZE = 1048576;
const PAGE_SIZE = 4096;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_NONBLOCK = 0o4000;

/** pipefs: the device every pipe's inode lives on. */
const PIPEFS_DEV = makedev(0, 12);
let nextPipeIno = 1;
/** A queue event beyond poll's bits: an end was opened (a FIFO's opener waits for its peer). */
export const PIPE_OPENED = 1 << 30;

export class Pipe {
  readonly ino = nextPipeIno++;
  private chunks: Buffer[] = [];
  private bytes = 0;
  readers = 0;
  writers = 0;
  /** Ends ever opened: a FIFO opener waits for a peer to open, even one that already left. */
  readerOpens = 0;
  writerOpens = 0;
  /** Notified with POLLIN (data, or a writer's close with POLLHUP), POLLOUT (room) and so on. */
  readonly queue = new WaitQueue();
  readonly ctimeNs = nowNs();
  mtimeNs = this.ctimeNs;
  atimeNs = this.ctimeNs;

  constructor(public capacity = PIPE_CAPACITY) {}

  /**
   * F_SETPIPE_SZ: the capacity becomes `size` rounded up to a power of two of at least a page
   * (Linux's round_pipe_size). Above /proc/sys/fs/pipe-max-size it takes CAP_SYS_RESOURCE,
   * which a container does not have by default (EPERM); below what the pipe holds, EBUSY.
   */
  resize(size: number): number {
    if (size > 2 ** 31) fail("EINVAL");
    let n = PAGE_SIZE;
    while (n < size) n *= 2;
    if (n > PIPE_MAX_SIZE) fail("EPERM", "above pipe-max-size");
    if (n < this.bytes) fail("EBUSY");
    const grew = n > this.capacity;
    this.capacity = n;
    if (grew) this.queue.notify(POLLOUT);
    return n;
  }

  get size(): number {
    return this.bytes;
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
      this.queue.notify(POLLOUT);
    }
    return n;
  }

  put(src: Buffer): void {
    // Copy: the caller's buffer may be reused once write() returns.
    this.chunks.push(Buffer.from(src));
    this.bytes += src.length;
    this.mtimeNs = nowNs();
    this.queue.notify(POLLIN);
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
  /** Opened through a FIFO's name: a blocking open waits for a writer. */
  fifo = false;
  /** The pipe's writer opens when this end opened. */
  private readonly writerOpensSeen: number;

  /** Readable with data; hung up once every writer is gone (read then returns 0). */
  poll(): number {
    return (this.pipe.size > 0 ? POLLIN : 0) | (this.pipe.writers === 0 ? POLLHUP : 0);
  }

  get queue(): WaitQueue {
    return this.pipe.queue;
  }
  constructor(
    readonly pipe: Pipe,
    public flags: number = O_RDONLY,
  ) {
    this.writerOpensSeen = pipe.writerOpens;
    pipe.readers++;
    pipe.readerOpens++;
    pipe.queue.notify(PIPE_OPENED);
  }

  /** Data, or 0 once every writer is gone; EAGAIN while a writer lives but wrote nothing. */
  read(dst: Uint8Array): number {
    if (dst.length === 0) return 0;
    const n = this.pipe.take(dst);
    if (n > 0 || this.pipe.writers === 0) return n;
    return fail("EAGAIN");
  }

  /**
   * A FIFO's reader opened without O_NONBLOCK waits until a writer comes (Linux's
   * wait_for_partner: a writer that opened, wrote and left meanwhile counts).
   */
  openWait(): Wait | undefined {
    const p = this.pipe;
    return this.fifo &&
      !(this.flags & O_NONBLOCK) &&
      p.writers === 0 &&
      p.writerOpens === this.writerOpensSeen
      ? [p.queue, PIPE_OPENED]
      : undefined;
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
    // Writers waiting for room now fail with EPIPE; poll shows POLLERR.
    this.pipe.queue.notify(POLLERR | POLLOUT);
  }
}

export class PipeWriter implements FileDescription {
  private closed = false;
  /** Opened through a FIFO's name: a blocking open waits for a reader. */
  fifo = false;
  /** The pipe's reader opens when this end opened. */
  private readonly readerOpensSeen: number;

  /** Writable while there is room; an error once every reader is gone (write gives EPIPE). */
  poll(): number {
    if (this.pipe.readers === 0) return POLLERR;
    return this.pipe.size < this.pipe.capacity ? POLLOUT : 0;
  }

  get queue(): WaitQueue {
    return this.pipe.queue;
  }
  constructor(
    readonly pipe: Pipe,
    public flags: number = O_WRONLY,
  ) {
    this.readerOpensSeen = pipe.readerOpens;
    pipe.writers++;
    pipe.writerOpens++;
    pipe.queue.notify(PIPE_OPENED);
  }

  /** A FIFO's writer opened without O_NONBLOCK waits until a reader comes (or came and left). */
  openWait(): Wait | undefined {
    const p = this.pipe;
    return this.fifo && p.readers === 0 && p.readerOpens === this.readerOpensSeen
      ? [p.queue, PIPE_OPENED]
      : undefined;
  }

  read(): number {
    return fail("EBADF");
  }

  /**
   * What fits now: small writes (at most PIPE_BUF) go in whole or not at all, large ones may
   * be split; EAGAIN when nothing can go in. A blocking writer's syscall waits and goes on
   * with the rest, so its large write ends up whole (or short only if interrupted).
   */
  write(src: Buffer): number {
    if (this.pipe.readers === 0) fail("EPIPE");
    if (src.length === 0) return 0;
    const room = this.pipe.capacity - this.pipe.size;
    if (src.length <= room) {
      this.pipe.put(src);
      return src.length;
    }
    if (src.length <= PIPE_BUF || room === 0) fail("EAGAIN");
    this.pipe.put(src.subarray(0, room));
    return room;
  }

  stat(): FileStat {
    return this.pipe.stat();
  }

  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.pipe.writers--;
    // Readers waiting for data now read 0; poll shows POLLHUP.
    this.pipe.queue.notify(POLLHUP | POLLIN);
  }
}

/** The pipe behind a description, if it is an end of one (fcntl's pipe-size commands). */
export function pipeOf(d: FileDescription): Pipe | undefined {
  return d instanceof PipeReader || d instanceof PipeWriter || d instanceof PipeDuplex ? d.pipe : undefined;
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
  read(dst: Uint8Array): number {
    return this.r.read(dst);
  }
  write(src: Buffer): number {
    return this.w.write(src);
  }
  poll(): number {
    return this.r.poll() | this.w.poll();
  }
  get queue(): WaitQueue {
    return this.pipe.queue;
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
 * reader, unless O_NONBLOCK (then a lone writer gets ENXIO); O_RDWR never waits. The waiting
 * is the opener's (openWait(), which the open syscall blocks on). The pipe lives while any
 * end is open, so data left by writers who all closed is dropped.
 */
export function openFifo(fifo: { pipe: Pipe | null }, flags: number): FileDescription {
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
    w.fifo = true;
    return w;
  }
  const r = new PipeReader(pipe, flags);
  r.fifo = true;
  return r;
}
