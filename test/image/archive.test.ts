// Images as files: moat's OCI layouts read back by skopeo and umoci, and archives written by
// skopeo (OCI and docker save format) loaded by moat.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { loadArchive, saveImages } from "../../src/image/archive.js";
import { buildImage, packLayer } from "../../src/image/build.js";
import { busyboxLayer, DEFAULT_IMAGE, ensureDefaultImage } from "../../src/image/default-image.js";
import { ImageStore } from "../../src/image/store.js";
import { isMoatError, RefNameAnnotation } from "../../src/spec/index.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

const sha256File = async (p: string) =>
  createHash("sha256")
    .update(await fs.readFile(p))
    .digest("hex");

describe("default image and archives", () => {
  let store: ImageStore;
  let digest: string;
  before(async () => {
    store = await ImageStore.open(tempDir());
    await ensureDefaultImage(store);
    digest = (await store.resolve(DEFAULT_IMAGE))!.digest;
  });

  test("the built-in image is deterministic: same busybox, same digest", async () => {
    const other = await ImageStore.open(tempDir());
    await ensureDefaultImage(other);
    assert.equal((await other.resolve(DEFAULT_IMAGE))!.digest, digest);
    const a = await busyboxLayer();
    const b = await busyboxLayer();
    assert.ok(a.equals(b));
  });

  test("an OCI layout written by moat is read back by skopeo and unpacked by umoci", async () => {
    const dir = path.join(tempDir(), "layout");
    await saveImages(store, [DEFAULT_IMAGE], dir, { directory: true });
    const inspect = JSON.parse(
      execFileSync("skopeo", ["inspect", `oci:${dir}:${DEFAULT_IMAGE}`], { encoding: "utf8" }),
    );
    assert.equal(inspect.Digest, digest);
    assert.equal(inspect.Architecture, "amd64");
    assert.deepEqual(inspect.Env, ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);

    const bundle = path.join(tempDir(), "umoci-bundle");
    execFileSync("umoci", ["unpack", "--image", `${dir}:${DEFAULT_IMAGE}`, bundle], { stdio: "pipe" });
    const rootfs = path.join(bundle, "rootfs");
    assert.equal(await sha256File(path.join(rootfs, "bin/busybox")), await sha256File("/bin/busybox"));
    assert.equal(await fs.readlink(path.join(rootfs, "bin/ls")), "../bin/busybox");
    assert.equal(((await fs.stat(path.join(rootfs, "tmp"))).mode & 0o7777).toString(8), "1777");
    const spec = JSON.parse(await fs.readFile(path.join(bundle, "config.json"), "utf8"));
    assert.deepEqual(spec.process.args, ["sh"]);
  });

  test("save as a tar and load into another store gives the same image", async () => {
    const tar = path.join(tempDir(), "image.tar");
    await saveImages(store, [DEFAULT_IMAGE], tar);
    const listing = execFileSync("tar", ["-tf", tar], { encoding: "utf8" }).split("\n");
    assert.ok(listing.includes("index.json") && listing.includes("oci-layout"));
    const other = await ImageStore.open(tempDir());
    assert.deepEqual(await loadArchive(other, tar), [DEFAULT_IMAGE]);
    assert.equal((await other.resolve(DEFAULT_IMAGE))!.digest, digest);
    // skopeo reads the tar as an oci-archive too
    const inspect = JSON.parse(
      execFileSync("skopeo", ["inspect", `oci-archive:${tar}:${DEFAULT_IMAGE}`], { encoding: "utf8" }),
    );
    assert.equal(inspect.Digest, digest);
    // ... and as a docker save archive: skopeo copies it out with the layer intact
    const out = path.join(tempDir(), "from-docker-archive");
    execFileSync("skopeo", ["copy", "-q", `docker-archive:${tar}`, `oci:${out}:copy`]);
    const again = JSON.parse(execFileSync("skopeo", ["inspect", `oci:${out}:copy`], { encoding: "utf8" }));
    assert.deepEqual(again.Layers.length, 1);
    assert.equal(again.Architecture, "amd64");
  });

  test("a docker save archive (written by skopeo) loads with its tag", async () => {
    const dir = path.join(tempDir(), "layout");
    await saveImages(store, [DEFAULT_IMAGE], dir, { directory: true });
    const tar = path.join(tempDir(), "docker.tar");
    execFileSync("skopeo", [
      "copy",
      "-q",
      `oci:${dir}:${DEFAULT_IMAGE}`,
      `docker-archive:${tar}:example.com/tools/bb:v1`,
    ]);
    const other = await ImageStore.open(tempDir());
    assert.deepEqual(await loadArchive(other, tar), ["example.com/tools/bb:v1"]);
    const desc = (await other.resolve("example.com/tools/bb:v1"))!;
    const manifest = await other.readJson<{ layers: Array<{ digest: string }> }>(desc.digest);
    assert.equal(manifest.layers.length, 1);
    // docker archives carry uncompressed layers: the blob is the layer tar itself, so its digest is the diffID
    const config = await other.readJson<{ rootfs: { diff_ids: string[] } }>(
      (await other.readJson<{ config: { digest: string } }>(desc.digest)).config.digest,
    );
    assert.equal(manifest.layers[0]!.digest, config.rootfs.diff_ids[0]);

    // --name replaces the archive's own tag; --platform of another platform is refused.
    const named = await ImageStore.open(tempDir());
    assert.deepEqual(await loadArchive(named, tar, { name: "example.com/mine:2" }), ["example.com/mine:2"]);
    assert.deepEqual(
      (await named.list()).map((r) => r.name),
      ["example.com/mine:2"],
    );
    await assert.rejects(
      loadArchive(named, tar, {
        name: "example.com/arm:1",
        platform: { os: "linux", architecture: "arm64" },
      }),
      (e) => isMoatError(e, "ENOPLATFORM") && /wanted linux\/arm64, actual: linux\/amd64/.test(e.message),
    );
    assert.equal(await named.resolve("example.com/arm:1"), undefined);
  });

  test("an archive that fails part-way names none of its images", async () => {
    await buildImage(store, {
      layers: [await packLayer([{ name: "arm", type: "file", mode: 0o644, content: Buffer.from("a") }])],
      config: { Cmd: ["sh"] },
      platform: { os: "linux", architecture: "arm64" },
      name: "example.com/zz-arm:1",
    });
    const tar = path.join(tempDir(), "two.tar");
    await saveImages(store, [DEFAULT_IMAGE, "example.com/zz-arm:1"], tar);
    const other = await ImageStore.open(tempDir());
    await assert.rejects(
      loadArchive(other, tar, { platform: { os: "linux", architecture: "amd64" } }),
      (e) => isMoatError(e, "ENOPLATFORM") && /zz-arm:1 was found but/.test(e.message),
    );
    assert.deepEqual(await other.list(), [], "the amd64 image before it is not named either");
  });

  test("load --name REPO of a layout whose images are named by bare tags gives REPO:TAG each", async () => {
    await buildImage(store, {
      layers: [await packLayer([{ name: "v2", type: "file", mode: 0o644, content: Buffer.from("2") }])],
      config: { Cmd: ["sh"] },
      name: "example.com/second:1",
    });
    const dir = path.join(tempDir(), "layout");
    await saveImages(store, [DEFAULT_IMAGE, "example.com/second:1"], dir, { directory: true });
    const indexFile = path.join(dir, "index.json");
    const index = JSON.parse(await fs.readFile(indexFile, "utf8"));
    index.manifests[0].annotations[RefNameAnnotation] = "v1";
    index.manifests[1].annotations[RefNameAnnotation] = "v2";
    await fs.writeFile(indexFile, JSON.stringify(index));
    const other = await ImageStore.open(tempDir());
    await assert.rejects(
      loadArchive(other, dir, { name: "example.com/app:9" }),
      (e) => isMoatError(e, "EINVAL") && /holds 2 images, so --name example.com\/app:9/.test(e.message),
    );
    assert.deepEqual(await other.list(), []);
    assert.deepEqual(await loadArchive(other, dir, { name: "example.com/app" }), [
      "example.com/app:v1",
      "example.com/app:v2",
    ]);
    assert.equal((await other.resolve("example.com/app:v1"))!.digest, digest);
  });

  test("bad archives give clear errors and load nothing", async () => {
    const other = await ImageStore.open(tempDir());
    await assert.rejects(loadArchive(other, path.join(tempDir(), "missing.tar")), (e) =>
      isMoatError(e, "ENOENT"),
    );
    const notImage = path.join(tempDir(), "x.tar");
    execFileSync("tar", ["-cf", notImage, "-C", "/etc", "hostname"]);
    await assert.rejects(
      loadArchive(other, notImage),
      (e) => isMoatError(e, "EINVAL") && /neither an OCI layout/.test(e.message),
    );
    // a layout whose index names a blob it does not hold
    const dir = path.join(tempDir(), "broken");
    await saveImages(store, [DEFAULT_IMAGE], dir, { directory: true });
    const blobs = await fs.readdir(path.join(dir, "blobs", "sha256"));
    for (const b of blobs) {
      const p = path.join(dir, "blobs", "sha256", b);
      if ((await fs.stat(p)).size > 100_000) await fs.writeFile(p, "tampered");
    }
    await assert.rejects(loadArchive(other, dir), (e) => isMoatError(e, "EDIGEST"));
    assert.deepEqual(await other.list(), []);
  });
});
