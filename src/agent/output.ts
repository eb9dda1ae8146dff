// One output stream of a guest process (stdout or stderr), held until the host reads it
// with a long poll. The child is paused while too much is unread, so a chatty process
// slows down instead of filling the guest's memory.
import type { Readable } from "node:stream";

const HIGH_WATER = 1 << 20;

export class OutputBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private waiters: Array<() => void> = [];

  constructor(private readonly source: Readable) {
    source.on("data", (d: Buffer) => {
      this.chunks.push(d);
      this.size += d.length;
      if (this.size > HIGH_WATER) source.pause();
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    source.on("end", end);
    source.on("close", end);
    source.on("error", end);
  }

  /** Up to `max` bytes, waiting until some exist; eof once everything has been read. */
  async read(max: number, signal: AbortSignal): Promise<{ data: Buffer; eof: boolean }> {
    while (this.size === 0 && !this.ended && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.waiters.push(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
    if (this.size === 0) return { data: Buffer.alloc(0), eof: this.ended };
    const all = Buffer.concat(this.chunks, this.size);
    const data = all.subarray(0, Math.max(1, max));
    const rest = all.subarray(data.length);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    if (this.size <= HIGH_WATER && this.source.isPaused()) this.source.resume();
    return { data: Buffer.from(data), eof: false };
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
