// ttrpc client and server against each other, over an in-process stream pair and over
// a real unix socket, plus raw frames to check the wire format itself.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { after, before, describe, it } from "node:test";
import { TtrpcClient } from "../../src/ttrpc/client.js";
import {
  encodeFrame,
  FrameDecoder,
  isOversize,
  MAX_DATA_LENGTH,
  MessageType,
} from "../../src/ttrpc/framing.js";
import { Code, decodeResponse, encodeRequest, TtrpcError } from "../../src/ttrpc/messages.js";
import { TtrpcServer } from "../../src/ttrpc/server.js";

/** Two connected in-memory duplex streams. */
function streamPair(): [Duplex, Duplex] {
  let a!: Duplex;
  let b!: Duplex;
  const mk = (peer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      // A closed end is seen by the other side as end-of-stream, as with a socket.
      destroy(err, cb) {
        peer().push(null);
        cb(err);
      },
    });
  a = mk(() => b);
  b = mk(() => a);
  return [a, b];
}

function testServer(): TtrpcServer {
  return new TtrpcServer()
    .register("test.v1.Echo", "Echo", (p) => p)
    .register("test.v1.Echo", "Reverse", (p) => Buffer.from(p).reverse())
    .register("test.v1.Echo", "Delay", async (p) => {
      await new Promise((r) => setTimeout(r, Buffer.from(p).readUInt32BE(0)));
      return p;
    })
    .register("test.v1.Echo", "Fail", () => {
      throw new TtrpcError(Code.NOT_FOUND, "no such thing: make it first");
    })
    .register("test.v1.Echo", "Crash", () => {
      throw new Error("boom");
    })
    .register("test.v1.Echo", "Big", (p) => Buffer.alloc(Buffer.from(p).readUInt32BE(0), 7))
    .register("test.v1.Echo", "Meta", (_p, ctx) => Buffer.from(JSON.stringify(ctx.metadata)))
    .register(
      "test.v1.Echo",
      "Hang",
      (_p, ctx) =>
        new Promise((_, rej) => ctx.signal.addEventListener("abort", () => rej(new Error("aborted")))),
    );
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

describe("ttrpc over a stream pair", () => {
  it("answers unary calls, concurrently and out of order", async () => {
    const [a, b] = streamPair();
    const served = testServer().serve(b);
    const c = new TtrpcClient(a);
    assert.deepEqual(Buffer.from(await c.call("test.v1.Echo", "Echo", Buffer.from("hi"))), Buffer.from("hi"));
    const order: number[] = [];
    const calls = [300, 10, 150].map((ms, i) =>
      c.call("test.v1.Echo", "Delay", u32(ms)).then((p) => {
        order.push(i);
        return Buffer.from(p).readUInt32BE(0);
      }),
    );
    assert.deepEqual(await Promise.all(calls), [300, 10, 150]);
    assert.deepEqual(order, [1, 2, 0], "the fast calls are not held up by the slow one");
    c.close();
    await served;
  });

  it("turns handler errors into status codes", async () => {
    const [a, b] = streamPair();
    void testServer().serve(b);
    const c = new TtrpcClient(a);
    await assert.rejects(c.call("test.v1.Echo", "Fail", new Uint8Array()), (e: unknown) => {
      return (
        e instanceof TtrpcError && e.code === Code.NOT_FOUND && e.message === "no such thing: make it first"
      );
    });
    await assert.rejects(c.call("test.v1.Echo", "Crash", new Uint8Array()), (e: unknown) => {
      return e instanceof TtrpcError && e.code === Code.UNKNOWN && e.message === "boom";
    });
    await assert.rejects(c.call("test.v1.Echo", "Nope", new Uint8Array()), (e: unknown) => {
      return (
        e instanceof TtrpcError && e.code === Code.UNIMPLEMENTED && /test\.v1\.Echo\/Nope/.test(e.message)
      );
    });
    await assert.rejects(
      c.call("test.v1.Echo", "Hang", new Uint8Array(), { timeoutMs: 100 }),
      (e: unknown) => {
        return e instanceof TtrpcError && e.code === Code.DEADLINE_EXCEEDED;
      },
    );
    c.close();
  });

  it("passes metadata and enforces the 4 MiB limit both ways", async () => {
    const [a, b] = streamPair();
    void testServer().serve(b);
    const c = new TtrpcClient(a);
    const meta = [{ key: "k", value: "v" }];
    assert.deepEqual(
      JSON.parse(
        Buffer.from(await c.call("test.v1.Echo", "Meta", new Uint8Array(), { metadata: meta })).toString(),
      ),
      meta,
    );
    const justUnder = await c.call("test.v1.Echo", "Big", u32(MAX_DATA_LENGTH - 64));
    assert.equal(justUnder.length, MAX_DATA_LENGTH - 64);
    await assert.rejects(c.call("test.v1.Echo", "Big", u32(MAX_DATA_LENGTH)), (e: unknown) => {
      return e instanceof TtrpcError && e.code === Code.RESOURCE_EXHAUSTED;
    });
    await assert.rejects(c.call("test.v1.Echo", "Echo", Buffer.alloc(MAX_DATA_LENGTH)), (e: unknown) => {
      return e instanceof TtrpcError && e.code === Code.RESOURCE_EXHAUSTED;
    });
    // The connection is still usable after both refusals.
    assert.equal(Buffer.from(await c.call("test.v1.Echo", "Reverse", Buffer.from("abc"))).toString(), "cba");
    c.close();
  });

  it("fails pending calls when the connection drops", async () => {
    const [a, b] = streamPair();
    void testServer().serve(b);
    const c = new TtrpcClient(a);
    const p = c.call("test.v1.Echo", "Hang", new Uint8Array());
    b.destroy();
    await assert.rejects(p, (e: unknown) => e instanceof TtrpcError && e.code === Code.UNAVAILABLE);
    await assert.rejects(
      c.call("test.v1.Echo", "Echo", new Uint8Array()),
      (e: unknown) => e instanceof TtrpcError && e.code === Code.UNAVAILABLE,
    );
  });
});

describe("ttrpc over a unix socket", () => {
  let dir: string;
  let server: TtrpcServer;
  let path: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "moat-ttrpc-test-"));
    path = join(dir, "s.sock");
    server = testServer();
    await server.listen(path);
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const connect = () =>
    new Promise<Socket>((resolve, reject) => {
      const s = createConnection(path, () => resolve(s));
      s.once("error", reject);
    });

  it("serves several clients at once", async () => {
    const clients = [new TtrpcClient(await connect()), new TtrpcClient(await connect())];
    const out = await Promise.all(
      clients.flatMap((c, i) =>
        [0, 1, 2].map((j) => c.call("test.v1.Echo", "Echo", Buffer.from(`${i}-${j}`))),
      ),
    );
    assert.deepEqual(
      out.map((b) => Buffer.from(b).toString()),
      ["0-0", "0-1", "0-2", "1-0", "1-1", "1-2"],
    );
    for (const c of clients) c.close();
  });

  it("speaks the ttrpc wire format: odd stream ids, Response frames, status on error", async () => {
    const sock = await connect();
    const dec = new FrameDecoder();
    const frames: ReturnType<FrameDecoder["push"]> = [];
    sock.on("data", (d: Buffer) => frames.push(...dec.push(d)));
    const req = (id: number, method: string) =>
      encodeFrame({
        streamId: id,
        type: MessageType.Request,
        flags: 0,
        data: encodeRequest({
          service: "test.v1.Echo",
          method,
          payload: Buffer.from("x"),
          timeoutNano: 0n,
          metadata: [],
        }),
      });
    sock.write(Buffer.concat([req(5, "Echo"), req(4, "Echo"), req(7, "Fail")]));
    while (frames.length < 3) await new Promise((r) => setTimeout(r, 10));
    const byId = new Map(frames.map((f) => [f.streamId, f]));
    for (const f of frames) assert.ok(!isOversize(f) && f.type === MessageType.Response);
    const r5 = decodeResponse((byId.get(5) as { data: Uint8Array }).data);
    assert.equal(r5.status.code, Code.OK);
    assert.equal(Buffer.from(r5.payload).toString(), "x");
    assert.equal(
      decodeResponse((byId.get(4) as { data: Uint8Array }).data).status.code,
      Code.INVALID_ARGUMENT,
    );
    assert.equal(decodeResponse((byId.get(7) as { data: Uint8Array }).data).status.code, Code.NOT_FOUND);
    sock.destroy();
  });
});
