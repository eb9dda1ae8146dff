import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import {
  ClientStreamIds,
  type Decoded,
  encodeFrame,
  FLAG_REMOTE_CLOSED,
  type Frame,
  FrameDecoder,
  FramingError,
  HEADER_LENGTH,
  isOversize,
  MAX_DATA_LENGTH,
  MessageType,
  readFrames,
} from "../../src/ttrpc/framing.js";

function plain(d: Decoded): unknown {
  return isOversize(d) ? d : { ...d, data: Buffer.from(d.data).toString("hex") };
}

describe("ttrpc frame encoding", () => {
  it("lays out the 10-byte big-endian header", () => {
    const b = encodeFrame({
      streamId: 0x01020305,
      type: MessageType.Data,
      flags: FLAG_REMOTE_CLOSED,
      data: Buffer.from("hi"),
    });
    assert.equal(b.toString("hex"), `00000002010203050301${Buffer.from("hi").toString("hex")}`);
    assert.equal(HEADER_LENGTH, 10);
    assert.equal(MAX_DATA_LENGTH, 4 * 1024 * 1024);
  });

  it("rejects frames the protocol forbids", () => {
    const f: Frame = { streamId: 1, type: MessageType.Request, flags: 0, data: Buffer.alloc(0) };
    assert.throws(() => encodeFrame({ ...f, data: Buffer.alloc(MAX_DATA_LENGTH + 1) }), FramingError);
    assert.throws(() => encodeFrame({ ...f, streamId: 2 ** 32 }), FramingError);
    assert.throws(() => encodeFrame({ ...f, streamId: -1 }), FramingError);
    assert.throws(() => encodeFrame({ ...f, type: 256 }), FramingError);
    assert.throws(() => encodeFrame({ ...f, flags: 1.5 }), FramingError);
    assert.equal(
      encodeFrame({ ...f, data: Buffer.alloc(MAX_DATA_LENGTH) }).length,
      MAX_DATA_LENGTH + HEADER_LENGTH,
    );
  });

  it("decodes any sequence of frames however the bytes are split", () => {
    const frame = fc.record({
      streamId: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      type: fc.integer({ min: 0, max: 255 }),
      flags: fc.integer({ min: 0, max: 255 }),
      data: fc.uint8Array({ maxLength: 300 }),
    });
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 64 })),
        (frames, cuts) => {
          const bytes = Buffer.concat(frames.map(encodeFrame));
          const d = new FrameDecoder();
          const out: Decoded[] = [];
          let at = 0;
          for (const c of cuts) {
            if (at >= bytes.length) break;
            out.push(...d.push(bytes.subarray(at, at + c)));
            at += c;
          }
          out.push(...d.push(bytes.subarray(at)));
          assert.equal(d.pending, 0);
          assert.deepEqual(out.map(plain), frames.map(plain));
        },
      ),
    );
  });

  it("skips an oversize frame and keeps decoding the next one", () => {
    const header = Buffer.alloc(HEADER_LENGTH);
    header.writeUInt32BE(MAX_DATA_LENGTH + 5, 0);
    header.writeUInt32BE(7, 4);
    header[8] = MessageType.Request;
    const next = encodeFrame({ streamId: 9, type: MessageType.Request, flags: 0, data: Buffer.from("ok") });
    const d = new FrameDecoder();
    const out: Decoded[] = [
      ...d.push(header),
      ...d.push(Buffer.alloc(MAX_DATA_LENGTH)),
      ...d.push(Buffer.alloc(5)),
    ];
    assert.deepEqual(out, [{ oversize: true, streamId: 7, type: 1, flags: 0, length: MAX_DATA_LENGTH + 5 }]);
    assert.equal(d.pending, 0);
    const after = d.push(next);
    assert.equal(after.length, 1);
    assert.equal(Buffer.from((after[0] as Frame).data).toString(), "ok");
  });

  it("allocates odd client stream ids", () => {
    const ids = new ClientStreamIds();
    assert.deepEqual([ids.allocate(), ids.allocate(), ids.allocate()], [1, 3, 5]);
  });
});

describe("ttrpc framing over a socket", () => {
  let dir: string;
  let server: Server;
  const sockets: Socket[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "moat-ttrpc-test-"));
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    if (server) await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("carries frames both ways, up to the size limit, and reports a torn frame", async () => {
    const path = join(dir, "t.sock");
    // The server echoes every frame back as a response on the same stream.
    server = createServer(async (s) => {
      sockets.push(s);
      try {
        for await (const f of readFrames(s)) {
          if (isOversize(f)) continue;
          s.write(encodeFrame({ ...f, type: MessageType.Response }));
        }
      } catch {
        s.destroy();
      }
      s.end();
    });
    await new Promise<void>((r) => server.listen(path, r));
    const client = createConnection(path);
    sockets.push(client);
    await new Promise<void>((r) => client.once("connect", r));

    const ids = new ClientStreamIds();
    const sent: Frame[] = [0, 1, 100, 65536, MAX_DATA_LENGTH].map((n) => ({
      streamId: ids.allocate(),
      type: MessageType.Request,
      flags: 0,
      data: randomBytes(n),
    }));
    const replies = readFrames(client);
    for (const f of sent) client.write(encodeFrame(f));
    const got: Decoded[] = [];
    for await (const r of replies) {
      got.push(r);
      if (got.length === sent.length) break;
    }
    assert.deepEqual(
      got.map(plain),
      sent.map((f) => plain({ ...f, type: MessageType.Response })),
    );

    // A connection that ends inside a frame is an error, not a silent truncation.
    const torn = createConnection(path);
    sockets.push(torn);
    const tornFrames = readFrames(torn);
    await new Promise<void>((r) => torn.once("connect", r));
    const full = encodeFrame({
      streamId: 1,
      type: MessageType.Request,
      flags: 0,
      data: Buffer.from("complete"),
    });
    torn.end(Buffer.concat([full, full.subarray(0, 4)]));
    // The server echoes the whole frame, then closes without echoing the torn one.
    const echoed: Decoded[] = [];
    for await (const f of tornFrames) echoed.push(f);
    assert.equal(echoed.length, 1);

    await assert.rejects(
      (async () => {
        for await (const _ of readFrames(
          (async function* () {
            yield full.subarray(0, 12);
          })(),
        )) {
          // drain
        }
      })(),
      (e: unknown) => e instanceof FramingError && /middle of a message/.test(e.message),
    );
  });
});
