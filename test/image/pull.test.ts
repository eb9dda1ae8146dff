// Pull against Debian's real docker-registry on loopback: images built by moat, pushed with
// skopeo, pulled by moat, and checked file by file after bundling.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as http from "node:http";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { saveImages } from "../../src/image/archive.js";
import { createBundle, removeBundle } from "../../src/image/bundle.js";
import { DEFAULT_IMAGE, ensureDefaultImage } from "../../src/image/default-image.js";
import { type PullEvent, pull } from "../../src/image/pull.js";
import { ImageStore } from "../../src/image/store.js";
import { isMoatError } from "../../src/spec/index.js";
import { makeLayer, writeOciLayout } from "../helpers/layout.js";
import { type Creds, freePort, pushLayout, startRegistry, type TestRegistry } from "../helpers/registry.js";
import { cleanupTempDirs, mountsUnder, tempDir } from "../helpers/tmp.js";

const sha256File = async (p: string) =>
  createHash("sha256")
    .update(await fs.readFile(p))
    .digest("hex");

/** Push the default image, as a layout moat wrote, to addr/repo with skopeo. */
async function pushDefault(src: ImageStore, addr: string, repo: string, creds?: Creds) {
  const layout = path.join(tempDir(), "layout");
  await saveImages(src, [DEFAULT_IMAGE], layout, { directory: true });
  await pushLayout(layout, addr, repo, creds, DEFAULT_IMAGE);
}

async function storeIsClean(store: ImageStore) {
  assert.deepEqual(await fs.readdir(store.ingestDir), [], "no partial blob in ingest/");
  assert.deepEqual(
    (await fs.readdir(store.leasesDir)).filter((f) => f.startsWith("pull-")),
    [],
    "the pull's lease is released",
  );
}

describe("pull from a plain registry", () => {
  let reg: TestRegistry;
  let src: ImageStore;
  let defaultDigest: string;
  before(async () => {
    reg = await startRegistry("plain");
    src = await ImageStore.open(tempDir());
    await ensureDefaultImage(src);
    defaultDigest = (await src.resolve(DEFAULT_IMAGE))!.digest;
    await pushDefault(src, reg.addr, "tools/busybox:1");
  });
  after(async () => {
    await reg?.stop();
    cleanupTempDirs();
  });

  test("pull -> bundle gives the image's files; a second pull reuses every blob", async () => {
    const store = await ImageStore.open(tempDir());
    const events: PullEvent[] = [];
    const res = await pull(store, `${reg.addr}/tools/busybox:1`, { onEvent: (e) => events.push(e) });
    assert.equal(res.name, `${reg.addr}/tools/busybox:1`);
    assert.equal(res.manifest.digest, defaultDigest);
    assert.ok(events.some((e) => e.type === "layer" && e.state === "downloading"));
    assert.ok(events.some((e) => e.type === "progress"));

    const again: PullEvent[] = [];
    await pull(store, `${reg.addr}/tools/busybox:1`, { onEvent: (e) => again.push(e) });
    const states = again.filter((e) => e.type === "layer").map((e) => (e as { state: string }).state);
    assert.deepEqual(states, ["exists"]);
    await storeIsClean(store);

    const dir = path.join(tempDir(), "bundle");
    const b = await createBundle(store, res.name, dir, { args: ["ls", "-l"] });
    try {
      assert.equal(await sha256File(path.join(b.rootfs, "bin/busybox")), await sha256File("/bin/busybox"));
      assert.equal(await fs.readlink(path.join(b.rootfs, "usr/bin/env")), "../../bin/busybox");
      const spec = JSON.parse(await fs.readFile(path.join(dir, "config.json"), "utf8"));
      assert.deepEqual(spec.process.args, ["ls", "-l"]);
    } finally {
      await removeBundle(dir);
    }
    assert.deepEqual(mountsUnder(dir), []);
  });

  test("an image index: linux/amd64 by default, --platform picks another, a missing one fails cleanly", async () => {
    const layout = await writeOciLayout(path.join(tempDir(), "multi"), {
      layers: [await makeLayer({ "etc/motd": "multi-platform\n" })],
      config: { config: { Cmd: ["cat", "/etc/motd"] } },
      tag: "v2",
      index: true,
    });
    await pushLayout(layout.dir, reg.addr, "multi:v2");
    const store = await ImageStore.open(tempDir());
    const amd = await pull(store, `${reg.addr}/multi:v2`);
    assert.equal(amd.manifest.digest, layout.manifest.digest);
    assert.equal(amd.image.architecture, "amd64");

    const arm = await pull(store, `${reg.addr}/multi:v2`, {
      platform: { os: "linux", architecture: "arm64" },
    });
    assert.equal(arm.manifest.digest, layout.armManifest!.digest);

    const before = await store.list();
    await assert.rejects(
      pull(store, `${reg.addr}/multi:v2`, { platform: { os: "linux", architecture: "s390x" } }),
      (e) => isMoatError(e, "ENOPLATFORM") && /linux\/amd64/.test(e.message) && /--platform/.test(e.message),
    );
    assert.deepEqual(await store.list(), before);
    await storeIsClean(store);
  });

  test("bad reference, unknown image and unknown registry each say what is wrong", async () => {
    const store = await ImageStore.open(tempDir());
    await assert.rejects(pull(store, "UPPER/case"), (e) => isMoatError(e, "EINVAL"));
    await assert.rejects(
      pull(store, `${reg.addr}/nope:1`),
      (e) => isMoatError(e, "ENOENT") && /not found/.test(e.message),
    );
    const port = await freePort();
    await assert.rejects(pull(store, `127.0.0.1:${port}/x:1`, { retries: 0 }), (e) =>
      isMoatError(e, "ECONNREFUSED"),
    );
    assert.deepEqual(await store.list(), []);
    await storeIsClean(store);
  });

  test("a corrupted blob in the registry is detected and never stored", async () => {
    const layout = await writeOciLayout(path.join(tempDir(), "corrupt"), {
      layers: [await makeLayer({ "data.txt": "x".repeat(50_000) })],
      config: {},
      tag: "c1",
    });
    await pushLayout(layout.dir, reg.addr, "corrupt:c1");
    // Flip the layer's bytes inside the registry's own storage.
    const hex = layout.layers[0]!.digest.slice(7);
    const data = path.join(reg.storageDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    const bytes = await fs.readFile(data);
    bytes[bytes.length >> 1] ^= 0xff;
    await fs.writeFile(data, bytes);

    const store = await ImageStore.open(tempDir());
    await assert.rejects(pull(store, `${reg.addr}/corrupt:c1`, { retries: 1 }), (e) =>
      isMoatError(e, "EDIGEST"),
    );
    assert.equal(await store.hasBlob(layout.layers[0]!.digest), false);
    assert.deepEqual(await store.list(), []);
    await storeIsClean(store);
  });

  test("a registry that drops the connection mid-blob: retried, then a clear error, store consistent", async () => {
    // A loopback front that proxies the real registry but cuts every blob body in half.
    let blobAttempts = 0;
    const front = http.createServer(async (req, res) => {
      const upstream = await fetch(`http://${reg.addr}${req.url}`, {
        headers: { accept: req.headers.accept ?? "*/*" },
      });
      const body = Buffer.from(await upstream.arrayBuffer());
      const headers: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (k !== "transfer-encoding" && k !== "content-encoding") headers[k] = v;
      });
      if (req.url?.includes("/blobs/") && body.length > 10_000) {
        blobAttempts++;
        res.writeHead(upstream.status, { ...headers, "content-length": String(body.length) });
        res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
        return;
      }
      res.writeHead(upstream.status, headers);
      res.end(body);
    });
    const port = await freePort();
    await new Promise<void>((r) => front.listen(port, "127.0.0.1", r));
    try {
      const store = await ImageStore.open(tempDir());
      await assert.rejects(pull(store, `127.0.0.1:${port}/tools/busybox:1`, { retries: 2 }), (e: Error) => {
        assert.ok(isMoatError(e), `a MoatError, got ${e}`);
        return true;
      });
      assert.equal(blobAttempts, 3, "the layer was tried once and retried twice");
      assert.deepEqual(await store.list(), []);
      await storeIsClean(store);
    } finally {
      front.closeAllConnections();
      await new Promise<void>((r) => front.close(() => r()));
    }
  });
});

describe("pull with authentication", () => {
  let basic: TestRegistry;
  let token: TestRegistry;
  let src: ImageStore;
  before(async () => {
    [basic, token] = await Promise.all([startRegistry("htpasswd"), startRegistry("token")]);
    src = await ImageStore.open(tempDir());
    await ensureDefaultImage(src);
    await pushDefault(src, basic.addr, "private/bb:1", basic.creds);
    await pushDefault(src, token.addr, "private/bb:1", token.creds);
  });
  after(async () => {
    await basic?.stop();
    await token?.stop();
    cleanupTempDirs();
  });

  test("basic auth: refused without credentials (EAUTH, store untouched), pulls with them", async () => {
    const store = await ImageStore.open(tempDir());
    await assert.rejects(
      pull(store, `${basic.addr}/private/bb:1`),
      (e) => isMoatError(e, "EAUTH") && /--creds/.test(e.message),
    );
    await assert.rejects(
      pull(store, `${basic.addr}/private/bb:1`, { credentials: { username: "moat", password: "wrong" } }),
      (e) => isMoatError(e, "EAUTH"),
    );
    assert.deepEqual(await store.list(), []);
    const res = await pull(store, `${basic.addr}/private/bb:1`, { credentials: basic.creds! });
    assert.equal(res.name, `${basic.addr}/private/bb:1`);
  });

  test("bearer token auth: a token from the issuer, reused across the pull's requests", async () => {
    const store = await ImageStore.open(tempDir());
    await assert.rejects(pull(store, `${token.addr}/private/bb:1`), (e) => isMoatError(e, "EAUTH"));
    const hits = token.issuerHits();
    await pull(store, `${token.addr}/private/bb:1`, { credentials: token.creds! });
    assert.ok(token.issuerHits() - hits <= 2, `token reused (issuer hit ${token.issuerHits() - hits} times)`);
    assert.ok(await store.resolve(`${token.addr}/private/bb:1`));
  });
});
