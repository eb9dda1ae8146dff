// The byte stream under a ttrpc client or server: frames in, frames out, one close.
// Both sides of ttrpc share this so the socket handling lives in one place.
import type { Duplex } from "node:stream";
import { type Decoded, encodeFrame, type Frame, FrameDecoder, FramingError } from "./framing.js";

export class FrameConnection {
  private readonly decoder = new FrameDecoder();
  private closedWith: Error | undefined;
  private readonly closeListeners: Array<(e: Error) => void> = [];

  constructor(
    private readonly stream: Duplex,
    private readonly onFrame: (f: Decoded) => void,
  ) {
    stream.on("data", (chunk: Buffer | string) => {
      if (typeof chunk === "string") {
        this.fail(new FramingError("ttrpc needs a binary stream; do not set an encoding on it"));
        return;
      }
      let frames: Decoded[];
      try {
        frames = this.decoder.push(chunk);
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      for (const f of frames) {
        if (this.closedWith) return;
        this.onFrame(f);
      }
    });
    stream.on("error", (e) => this.fail(e));
    stream.on("end", () => this.fail(new FramingError("the ttrpc peer closed the connection")));
    stream.on("close", () => this.fail(new FramingError("the ttrpc connection is closed")));
  }

  get closed(): Error | undefined {
    return this.closedWith;
  }

  send(f: Frame): void {
    if (this.closedWith) throw this.closedWith;
    this.stream.write(encodeFrame(f));
  }

  onClose(fn: (e: Error) => void): void {
    if (this.closedWith) fn(this.closedWith);
    else this.closeListeners.push(fn);
  }

  close(): void {
    this.fail(new FramingError("the ttrpc connection was closed by this side"));
  }

  private fail(e: Error): void {
    if (this.closedWith) return;
    this.closedWith = e;
    this.stream.destroy();
    for (const fn of this.closeListeners.splice(0)) fn(e);
  }
}
