// Registry mirrors (the host configuration's registryMirrors): a pull of docker.io/... is
// served by a loopback registry holding the same repository, a mirror that does not answer
// is passed over, and the image keeps the name the user asked for.
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { saveImages } from "../../src/image/archive.js";
import { DEFAULT_IMAGE, ensureDefaultImage } from "../../src/image/default-image.js";
import { pull } from "../../src/image/pull.js";
import { ImageStore } from "../../src/image/store.js";
import { readHostConfig } from "../../src/spec/config.js";
import { isMoatError } from "../../src/spec/index.js";
import { freePort, pushLayout, startRegistry, type TestRegistry } from "../helpers/registry.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

describe("registry mirrors", () => {
  let reg: TestRegistry;
  let digest: string;
  let config: string;
  before(async () => {
    reg = await startRegistry("plain");
    const src = await ImageStore.open(tempDir());
    await ensureDefaultImage(src);
    digest = (await src.resolve(DEFAULT_IMAGE))!.digest;
    const layout = path.join(tempDir(), "layout");
    await saveImages(src, [DEFAULT_IMAGE], layout, { directory: true });
    await pushLayout(layout, reg.addr, "library/busybox:mirrored", undefined, DEFAULT_IMAGE);
    const dead = `127.0.0.1:${await freePort()}`;
    config = path.join(tempDir(), "config.json");
    await fs.writeFile(config, JSON.stringify({ registryMirrors: { "docker.io": [dead, reg.addr] } }));
  });
  after(async () => {
    await reg?.stop();
    cleanupTempDirs();
  });

  test("docker.io comes from the first mirror that answers, under its docker.io name", async () => {
    const before = process.env.MOAT_CONFIG;
    process.env.MOAT_CONFIG = config;
    try {
      const store = await ImageStore.open(tempDir());
      const res = await pull(store, "busybox:mirrored");
      assert.equal(res.name, "docker.io/library/busybox:mirrored");
      assert.equal(res.manifest.digest, digest);
      assert.equal((await store.resolve("docker.io/library/busybox:mirrored"))?.digest, digest);
    } finally {
      if (before === undefined) delete process.env.MOAT_CONFIG;
      else process.env.MOAT_CONFIG = before;
    }
  });

  test("an image no mirror has fails with what each mirror said", async () => {
    const store = await ImageStore.open(tempDir());
    await assert.rejects(
      pull(store, "127.0.0.1:1/none:1", { mirrors: [reg.addr], retries: 0 }),
      (e) => e instanceof Error && /mirrors tried first/.test(e.message) && e.message.includes(reg.addr),
    );
  });

  test("a malformed registryMirrors is an error naming the file, never ignored", async () => {
    const bad = path.join(tempDir(), "bad.json");
    await fs.writeFile(bad, JSON.stringify({ registryMirrors: { "docker.io": "127.0.0.1:5000" } }));
    assert.throws(
      () => readHostConfig({ MOAT_CONFIG: bad }),
      (e) => isMoatError(e, "EINVAL") && /registryMirrors/.test(e.message) && e.message.includes(bad),
    );
  });
});
