// A Writable that keeps what a sandbox's process printed, for assertions.
import { Writable } from "node:stream";

export class Collector extends Writable {
  private readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.chunks.push(Buffer.from(chunk));
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

/** What a child printed and how it ended, as the native side of a comparison records it. */
export interface ChildOutcome {
  stdout: string;
  stderr: string;
  code?: number;
  signal?: string;
}

/**
 * Collect a spawned child's stdout and stderr and resolve with them and its end (the exit
 * code, or the signal that killed it) once both streams are closed.
 */
export function outcomeOf(p: import("node:child_process").ChildProcess): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    p.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
    });
    p.stderr?.on("data", (c: Buffer) => {
      err += c.toString();
    });
    p.on("error", reject);
    p.on("close", (code, signal) => {
      const o: ChildOutcome = { stdout: out, stderr: err };
      if (code !== null) o.code = code;
      if (signal !== null) o.signal = signal;
      resolve(o);
    });
  });
}
