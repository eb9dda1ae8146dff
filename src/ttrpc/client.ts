// A ttrpc client: unary calls over one connection, any number in flight at once, each
// on its own odd stream id. Service and method names are strings and payloads are
// bytes, so the same client serves the guest agent and containerd's shim API.
import type { Duplex } from "node:stream";
import { FrameConnection } from "./connection.js";
import { ClientStreamIds, type Decoded, isOversize, MAX_DATA_LENGTH, MessageType } from "./framing.js";
import { Code, decodeResponse, encodeRequest, type Metadata, TtrpcError } from "./messages.js";

export interface CallOptions {
  /** Sent to the server as timeout_nano, and enforced here. */
  readonly timeoutMs?: number;
  readonly metadata?: Metadata;
  readonly signal?: AbortSignal;
}

interface Pending {
  resolve(payload: Uint8Array): void;
  reject(e: Error): void;
}

export class TtrpcClient {
  private readonly conn: FrameConnection;
  private readonly ids = new ClientStreamIds();
  private readonly pending = new Map<number, Pending>();

  constructor(stream: Duplex) {
    this.conn = new FrameConnection(stream, (f) => this.onFrame(f));
    this.conn.onClose((e) => {
      const err = new TtrpcError(Code.UNAVAILABLE, `ttrpc connection lost: ${e.message}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  /** Resolves with the response payload, or rejects with a TtrpcError carrying the status. */
  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    const closed = this.conn.closed;
    if (closed)
      return Promise.reject(new TtrpcError(Code.UNAVAILABLE, `ttrpc connection lost: ${closed.message}`));
    if (opts.signal?.aborted)
      return Promise.reject(new TtrpcError(Code.CANCELLED, `${service}/${method} was cancelled`));
    const data = encodeRequest({
      service,
      method,
      payload,
      timeoutNano: opts.timeoutMs ? BigInt(Math.ceil(opts.timeoutMs)) * 1_000_000n : 0n,
      metadata: opts.metadata ?? [],
    });
    if (data.length > MAX_DATA_LENGTH) {
      return Promise.reject(
        new TtrpcError(
          Code.RESOURCE_EXHAUSTED,
          `${service}/${method} request of ${data.length} bytes exceeds ttrpc's ${MAX_DATA_LENGTH}-byte limit`,
        ),
      );
    }
    const id = this.ids.allocate();
    return new Promise<Uint8Array>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => finish(new TtrpcError(Code.CANCELLED, `${service}/${method} was cancelled`));
      const finish = (e: Error | undefined, value?: Uint8Array) => {
        if (!this.pending.delete(id)) return;
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        if (e) reject(e);
        else resolve(value!);
      };
      this.pending.set(id, { resolve: (v) => finish(undefined, v), reject: (e) => finish(e) });
      if (opts.timeoutMs) {
        timer = setTimeout(
          () =>
            finish(
              new TtrpcError(
                Code.DEADLINE_EXCEEDED,
                `${service}/${method} got no answer within ${opts.timeoutMs} ms`,
              ),
            ),
          opts.timeoutMs,
        );
      }
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      this.conn.send({ streamId: id, type: MessageType.Request, flags: 0, data });
    });
  }

  close(): void {
    this.conn.close();
  }

  private onFrame(f: Decoded): void {
    const p = this.pending.get(f.streamId);
    if (!p) return; // a late answer to a call that timed out or was cancelled
    if (isOversize(f)) {
      p.reject(
        new TtrpcError(
          Code.RESOURCE_EXHAUSTED,
          `the ttrpc server answered with ${f.length} bytes, over the ${MAX_DATA_LENGTH}-byte limit`,
        ),
      );
      return;
    }
    if (f.type !== MessageType.Response) return;
    let r: ReturnType<typeof decodeResponse>;
    try {
      r = decodeResponse(f.data);
    } catch (e) {
      p.reject(
        new TtrpcError(
          Code.INTERNAL,
          `the ttrpc server sent an undecodable response: ${(e as Error).message}`,
        ),
      );
      return;
    }
    if (r.status.code === Code.OK) p.resolve(r.payload);
    else p.reject(new TtrpcError(r.status.code, r.status.message));
  }
}
