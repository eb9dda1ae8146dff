// A ttrpc server: handlers registered by service and method name get the request
// payload bytes and return response bytes. Requests on one connection run
// concurrently; a handler's thrown TtrpcError becomes that status, any other error
// becomes UNKNOWN with its message.
import { createServer, type Server } from "node:net";
import type { Duplex } from "node:stream";
import { FrameConnection } from "./connection.js";
import { type Decoded, isOversize, MAX_DATA_LENGTH, MessageType } from "./framing.js";
import { Code, decodeRequest, encodeResponse, type Metadata, TtrpcError } from "./messages.js";

export interface CallContext {
  readonly service: string;
  readonly method: string;
  readonly metadata: Metadata;
  /** Aborted when the client's deadline passes or the connection closes. */
  readonly signal: AbortSignal;
}

export type Handler = (payload: Uint8Array, ctx: CallContext) => Promise<Uint8Array> | Uint8Array;

export class TtrpcServer {
  private readonly handlers = new Map<string, Handler>();
  private readonly listeners: Server[] = [];

  register(service: string, method: string, handler: Handler): this {
    this.handlers.set(`/${service}/${method}`, handler);
    return this;
  }

  /** Serve one connection; resolves when it closes. */
  serve(stream: Duplex): Promise<void> {
    const inflight = new Map<number, AbortController>();
    const conn: FrameConnection = new FrameConnection(stream, (f) => this.onFrame(conn, f, inflight));
    return new Promise((resolve) =>
      conn.onClose(() => {
        for (const a of inflight.values()) a.abort();
        resolve();
      }),
    );
  }

  /** Accept connections on a unix socket path. */
  listen(path: string): Promise<Server> {
    const s = createServer((sock) => {
      void this.serve(sock);
    });
    this.listeners.push(s);
    return new Promise((resolve, reject) => {
      s.once("error", reject);
      s.listen(path, () => resolve(s));
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.listeners.splice(0).map((s) => new Promise((r) => s.close(r))));
  }

  private onFrame(conn: FrameConnection, f: Decoded, inflight: Map<number, AbortController>): void {
    const reply = (code: number, message: string, payload: Uint8Array = new Uint8Array()) => {
      if (conn.closed) return;
      let data = encodeResponse({ status: { code, message }, payload });
      if (data.length > MAX_DATA_LENGTH) {
        data = encodeResponse({
          status: {
            code: Code.RESOURCE_EXHAUSTED,
            message: `the response of ${data.length} bytes exceeds ttrpc's ${MAX_DATA_LENGTH}-byte limit`,
          },
          payload: new Uint8Array(),
        });
      }
      conn.send({ streamId: f.streamId, type: MessageType.Response, flags: 0, data });
    };
    if (f.type !== MessageType.Request) return; // unary only: stray data frames are ignored
    if (f.streamId % 2 === 0 || inflight.has(f.streamId)) {
      reply(Code.INVALID_ARGUMENT, `stream id ${f.streamId} is not a new odd (client) stream id`);
      return;
    }
    if (isOversize(f)) {
      reply(
        Code.RESOURCE_EXHAUSTED,
        `request of ${f.length} bytes exceeds ttrpc's ${MAX_DATA_LENGTH}-byte limit`,
      );
      return;
    }
    let req: ReturnType<typeof decodeRequest>;
    try {
      req = decodeRequest(f.data);
    } catch (e) {
      reply(Code.INVALID_ARGUMENT, `undecodable ttrpc request: ${(e as Error).message}`);
      return;
    }
    const handler = this.handlers.get(`/${req.service}/${req.method}`);
    if (!handler) {
      reply(Code.UNIMPLEMENTED, `method /${req.service}/${req.method} is not implemented by this server`);
      return;
    }
    const abort = new AbortController();
    inflight.set(f.streamId, abort);
    let timer: NodeJS.Timeout | undefined;
    if (req.timeoutNano > 0n) {
      timer = setTimeout(() => abort.abort(), Number(req.timeoutNano / 1_000_000n) + 1);
    }
    const ctx: CallContext = {
      service: req.service,
      method: req.method,
      metadata: req.metadata,
      signal: abort.signal,
    };
    Promise.resolve()
      .then(() => handler(req.payload, ctx))
      .then(
        (out) => reply(Code.OK, "", out),
        (e: unknown) => {
          if (e instanceof TtrpcError) reply(e.code, e.message);
          else reply(Code.UNKNOWN, e instanceof Error ? e.message : String(e));
        },
      )
      .catch(() => {
        // the connection went away while replying; nothing is left to tell
      })
      .finally(() => {
        clearTimeout(timer);
        inflight.delete(f.streamId);
      });
  }
}
