import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { buildImage, packLayer } from "../../src/image/build.js";
import { ImageStore } from "../../src/image/store.js";
import { type ImageManifest, isMoatError, MediaType } from "../../src/spec/index.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

const digestOf = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

describe("image store", () => {
  test("ingest stores a blob under its digest and refuses content that does not match", async () => {
    const store = await ImageStore.open(tempDir());
    const good = Buffer.from("hello layer");
    const r = await store.ingest({ digest: digestOf(good), size: good.length }, Readable.from([good]));
    assert.equal(r.digest, digestOf(good));
    assert.deepEqual(await store.readBlob(r.digest), good);

    const other = Buffer.from("something else");
    await assert.rejects(
      store.ingest({ digest: digestOf(other), size: good.length }, Readable.from([good])),
      (e) => isMoatError(e, "EDIGEST"),
    );
    assert.equal(await store.hasBlob(digestOf(other)), false);
    // truncated: right prefix, fewer bytes than the descriptor says
    const big = Buffer.alloc(1000, 7);
    await assert.rejects(
      store.ingest({ digest: digestOf(big), size: big.length }, Readable.from([big.subarray(0, 500)])),
      (e) => isMoatError(e, "EDIGEST"),
    );
    assert.deepEqual(await fs.readdir(store.ingestDir), [], "no temp file is left behind");
    await assert.rejects(store.ingest({ digest: "sha256:../../etc" }, Readable.from([good])), (e) =>
      isMoatError(e, "EINVAL"),
    );
  });

  test("a failing input stream leaves neither blob nor temp file", async () => {
    const store = await ImageStore.open(tempDir());
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(100));
        this.destroy(new Error("connection reset"));
      },
    });
    await assert.rejects(store.ingest({ digest: digestOf(Buffer.alloc(200)) }, failing), /connection reset/);
    assert.deepEqual(await fs.readdir(store.ingestDir), []);
    assert.deepEqual(await fs.readdir(path.join(store.layoutDir, "blobs", "sha256")), []);
  });

  test("names live in an OCI layout index; gc keeps what names and leases reach", async () => {
    const store = await ImageStore.open(tempDir());
    const layer = await store.putBytes(Buffer.from("layer"), MediaType.ociLayer);
    const config = await store.putBytes(
      Buffer.from(
        JSON.stringify({
          architecture: "amd64",
          os: "linux",
          rootfs: { type: "layers", diff_ids: [layer.digest] },
        }),
      ),
      MediaType.ociConfig,
    );
    const manifest = await store.putBytes(
      Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers: [layer] })),
      MediaType.ociManifest,
    );
    const stray = await store.putBytes(Buffer.from("unreferenced"), "application/octet-stream");
    const leased = await store.putBytes(Buffer.from("leased"), "application/octet-stream");
    const lease = await store.lease([leased.digest]);
    await store.tag("example.com/a:1", manifest);
    assert.deepEqual(
      (await store.list()).map((r) => r.name),
      ["example.com/a:1"],
    );
    const index = JSON.parse(await fs.readFile(path.join(store.layoutDir, "index.json"), "utf8"));
    assert.equal(index.manifests[0].annotations["org.opencontainers.image.ref.name"], "example.com/a:1");

    const gc1 = await store.gc();
    assert.equal(gc1.blobs, 1);
    assert.equal(await store.hasBlob(stray.digest), false);
    for (const d of [layer, config, manifest, leased]) assert.equal(await store.hasBlob(d.digest), true);

    await lease.release();
    assert.equal(await store.untag("example.com/a:1"), true);
    assert.equal(await store.untag("example.com/a:1"), false);
    const gc2 = await store.gc();
    assert.equal(gc2.blobs, 4);
    assert.deepEqual(await fs.readdir(path.join(store.layoutDir, "blobs", "sha256")), []);
  });

  test("gc walks descriptors only: configs with a config object, shared layers, leased manifests", async () => {
    const root = tempDir();
    const store = await ImageStore.open(root);
    // Real configs carry a "config" object (Env, Cmd...), which is not a descriptor.
    const shared = await packLayer([
      { name: "shared", type: "file", mode: 0o644, content: Buffer.from("s") },
    ]);
    const onlyA = await packLayer([{ name: "a", type: "file", mode: 0o644, content: Buffer.from("a") }]);
    const onlyB = await packLayer([{ name: "b", type: "file", mode: 0o644, content: Buffer.from("b") }]);
    const config = { Env: ["PATH=/bin"], Cmd: ["sh"], Labels: { config: "x" } };
    const a = await buildImage(store, { layers: [shared, onlyA], config, name: "example.com/a:1" });
    const b = await buildImage(store, { layers: [shared, onlyB], config, name: "example.com/b:1" });
    const c = await buildImage(store, { layers: [onlyA], config: { Cmd: ["c"] } });
    // Unpacked layers, as a bundle leaves them: one directory per diffID.
    for (const t of [shared, onlyA, onlyB]) await fs.mkdir(store.layerPath(digestOf(t)), { recursive: true });
    // A lease names only a manifest (as a bundle's does): its config and layers stay too.
    const lease = await store.lease([c.manifestDigest]);
    const blobsDir = path.join(store.layoutDir, "blobs", "sha256");
    const before = (await fs.readdir(blobsDir)).sort();

    assert.deepEqual(await store.gc(), { blobs: 0, layers: 0, bytes: 0 });
    assert.deepEqual((await fs.readdir(blobsDir)).sort(), before);

    // rmi of a missing name among real ones changes nothing, names included.
    await assert.rejects(
      store.gc(["example.com/a:1", "example.com/never:1"]),
      (e) => isMoatError(e, "ENOENT") && /never:1: nothing was removed/.test(e.message),
    );
    assert.equal((await store.list()).length, 2);
    assert.deepEqual((await fs.readdir(blobsDir)).sort(), before);

    const manifestA = await store.readJson<ImageManifest>(a.manifestDigest);
    const manifestB = await store.readJson<ImageManifest>(b.manifestDigest);
    const r = await store.gc(["example.com/a:1"]);
    assert.deepEqual(
      (await store.list()).map((x) => x.name),
      ["example.com/b:1"],
    );
    // A's manifest and config go; its layer stays, leased through c's manifest.
    assert.equal(r.blobs, 2);
    assert.equal(await store.hasBlob(a.manifestDigest), false);
    assert.equal(await store.hasBlob(a.configDigest), false);
    for (const l of manifestB.layers) assert.equal(await store.hasBlob(l.digest), true);
    assert.equal(await store.hasBlob(manifestA.layers[1]!.digest), true, "c's lease keeps A's own layer");
    assert.equal(r.layers, 0);

    await lease.release();
    const r2 = await store.gc();
    assert.equal(r2.blobs, 3, "c's manifest, config and its layer (A's own)");
    assert.equal(r2.layers, 1, "A's own unpacked layer");
    assert.deepEqual(
      (await fs.readdir(store.layersDir)).sort(),
      [shared, onlyB].map((t) => digestOf(t).slice(7)).sort(),
      "B's unpacked layers stay, the one it shares with A included",
    );
    assert.deepEqual(
      (await fs.readdir(blobsDir)).sort(),
      [b.manifestDigest, b.configDigest, ...manifestB.layers.map((l) => l.digest)]
        .map((d) => d.slice(7))
        .sort(),
    );

    await store.gc(["example.com/b:1"]);
    assert.deepEqual(await fs.readdir(blobsDir), []);
    assert.deepEqual(await fs.readdir(store.layersDir), []);
  });

  test("several processes tagging at once lose no name (the index is locked)", async () => {
    const root = tempDir();
    const store = await ImageStore.open(root);
    const m = await store.putBytes(Buffer.from("{}"), MediaType.ociManifest);
    const storeModule = new URL("../../src/image/store.js", import.meta.url).href;
    const script = `
      const { ImageStore } = await import(${JSON.stringify(storeModule)});
      const s = await ImageStore.open(process.argv[1]);
      for (let i = 0; i < 10; i++) await s.tag("example.com/p" + process.argv[2] + ":" + i, ${JSON.stringify(m)});
    `;
    const runs = [0, 1, 2, 3].map(
      (n) =>
        new Promise<number>((resolve) => {
          const c = spawn(process.execPath, ["--input-type=module", "-e", script, root, String(n)], {
            stdio: "inherit",
          });
          c.on("exit", (code) => resolve(code ?? 1));
        }),
    );
    assert.deepEqual(await Promise.all(runs), [0, 0, 0, 0]);
    assert.equal((await store.list()).length, 40);
  });

  test("an unreadable index gives an error that says what to do", async () => {
    const root = tempDir();
    const store = await ImageStore.open(root);
    await fs.writeFile(path.join(store.layoutDir, "index.json"), "{not json");
    await assert.rejects(
      store.list(),
      (e) => isMoatError(e, "EIO") && /restore it or remove/.test(e.message),
    );
  });
});
