// ttrpc message framing (containerd/ttrpc PROTOCOL.md): a 10-byte header -- data
// length (u32 BE), stream id (u32 BE), message type (u8), flags (u8) -- then the data.
// This module knows nothing of protobuf; it turns bytes into frames and back.

export const HEADER_LENGTH = 10;
/** Larger frames must be rejected; the protocol reserves the first length byte. */
export const MAX_DATA_LENGTH = 4 << 20;

export const MessageType = {
  Request: 1,
  Response: 2,
  Data: 3,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Request and Data flag: the sender will send no more data on this stream. */
export const FLAG_REMOTE_CLOSED = 0x01;
/** Request flag: a non-unary request whose sender will keep sending data. */
export const FLAG_REMOTE_OPEN = 0x02;

export interface Frame {
  readonly streamId: number;
  /** A MessageType; other values are passed through so newer peers stay readable. */
  readonly type: number;
  readonly flags: number;
  readonly data: Uint8Array;
}

/**
 * A frame whose header announced more than MAX_DATA_LENGTH bytes. Its data was skipped
 * so the connection stays usable; the receiver should fail that stream, not the link.
 */
export interface OversizeFrame {
  readonly oversize: true;
  readonly streamId: number;
  readonly type: number;
  readonly flags: number;
  readonly length: number;
}

export type Decoded = Frame | OversizeFrame;

export function isOversize(d: Decoded): d is OversizeFrame {
  return "oversize" in d;
}

/** ttrpc is a leaf layer, so it carries its own error type with an errno-style code. */
export class FramingError extends Error {
  readonly code = "EPROTO";
  constructor(message: string) {
    super(message);
    this.name = "FramingError";
  }
}

const U32_MAX = 0xffffffff;

export function encodeFrame(f: Frame): Buffer {
  if (f.data.length > MAX_DATA_LENGTH) {
    throw new FramingError(
      `ttrpc message of ${f.data.length} bytes exceeds the ${MAX_DATA_LENGTH}-byte limit; send large payloads as stream data`,
    );
  }
  if (!Number.isInteger(f.streamId) || f.streamId < 0 || f.streamId > U32_MAX) {
    throw new FramingError(`ttrpc stream id ${f.streamId} is not a 32-bit unsigned integer`);
  }
  for (const [what, v] of [
    ["type", f.type],
    ["flags", f.flags],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xff)
      throw new FramingError(`ttrpc message ${what} ${v} is not a byte`);
  }
  const out = Buffer.allocUnsafe(HEADER_LENGTH + f.data.length);
  out.writeUInt32BE(f.data.length, 0);
  out.writeUInt32BE(f.streamId, 4);
  out[8] = f.type;
  out[9] = f.flags;
  out.set(f.data, HEADER_LENGTH);
  return out;
}

/**
 * Incremental decoder: feed it bytes as they arrive, in chunks of any size, and it
 * returns each complete frame once.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes of an oversize frame's data still to throw away. */
  private skipping = 0;

  push(chunk: Uint8Array): Decoded[] {
    let b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.skipping > 0) {
      const n = Math.min(this.skipping, b.length);
      this.skipping -= n;
      b = b.subarray(n);
    }
    if (b.length > 0) {
      this.chunks.push(b);
      this.buffered += b.length;
    }
    const out: Decoded[] = [];
    while (this.skipping === 0 && this.buffered >= HEADER_LENGTH) {
      const header = this.peek(HEADER_LENGTH);
      const length = header.readUInt32BE(0);
      const streamId = header.readUInt32BE(4);
      const type = header[8]!;
      const flags = header[9]!;
      if (length > MAX_DATA_LENGTH) {
        this.consume(HEADER_LENGTH);
        const n = Math.min(length, this.buffered);
        this.consume(n);
        this.skipping = length - n;
        out.push({ oversize: true, streamId, type, flags, length });
        continue;
      }
      if (this.buffered < HEADER_LENGTH + length) break;
      this.consume(HEADER_LENGTH);
      out.push({ streamId, type, flags, data: this.consume(length) });
    }
    return out;
  }

  /** Bytes received that do not yet form a whole frame (0 at a clean frame boundary). */
  get pending(): number {
    return this.buffered + this.skipping;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0]!.subarray(0, n);
  }

  private consume(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks, this.buffered);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    // Copy so a caller holding a frame does not pin (or see reuse of) the socket's chunk.
    return Buffer.from(out);
  }
}

/** Client-initiated streams use odd ids: 1, 3, 5, ... */
export class ClientStreamIds {
  private next = 1;

  allocate(): number {
    if (this.next > U32_MAX) {
      throw new FramingError("this ttrpc connection has used every client stream id; open a new connection");
    }
    const id = this.next;
    this.next += 2;
    return id;
  }
}

/** Frames from a byte stream (a net.Socket is one), ending when the stream ends. */
export async function* readFrames(stream: AsyncIterable<Uint8Array | string>): AsyncGenerator<Decoded> {
  const decoder = new FrameDecoder();
  for await (const chunk of stream) {
    if (typeof chunk === "string")
      throw new FramingError("ttrpc needs a binary stream; do not set an encoding on it");
    yield* decoder.push(chunk);
  }
  if (decoder.pending > 0) {
    throw new FramingError(
      `ttrpc connection closed in the middle of a message (${decoder.pending} bytes pending)`,
    );
  }
}
