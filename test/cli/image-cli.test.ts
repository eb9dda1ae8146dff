// The moat command as a person or a script drives it: JSON when piped, clear errors, exit codes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { humanSize } from "../../src/cli/output.js";
import { saveImages } from "../../src/image/archive.js";
import { buildImage, packLayer } from "../../src/image/build.js";
import { ImageStore } from "../../src/image/store.js";
import type { ImageManifest } from "../../src/spec/image.js";
import { pushLayout, startRegistry, type TestRegistry } from "../helpers/registry.js";
import { cleanupTempDirs, mountsUnder, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

const MAIN = new URL("../../src/cli/main.js", import.meta.url).pathname;

function moat(root: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, "--root", root, "--json", ...args], { encoding: "utf8" });
  const lines = r.stdout
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code: r.status, lines, stderr: r.stderr };
}

describe("moat image commands", () => {
  const root = tempDir();

  test("bundle from the built-in image, save, load elsewhere, rmi", async () => {
    const dir = path.join(tempDir(), "bundle");
    const b = moat(root, "bundle", "default", dir, "echo", "hi");
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.lines[0]!.bundle, dir);
    const spec = JSON.parse(await fs.readFile(path.join(dir, "config.json"), "utf8"));
    assert.deepEqual(spec.process.args, ["echo", "hi"]);
    assert.equal(moat(root, "bundle", "--remove", dir).code, 0);
    assert.deepEqual(mountsUnder(dir), []);

    const images = moat(root, "images");
    assert.deepEqual(
      images.lines.map((l) => l.name),
      ["moat.local/busybox:latest"],
    );

    const tar = path.join(tempDir(), "bb.tar");
    assert.equal(moat(root, "save", "-o", tar, "default").code, 0);
    const other = tempDir();
    const load = moat(other, "load", tar);
    assert.equal(load.code, 0, load.stderr);
    assert.deepEqual(load.lines, [{ loaded: "moat.local/busybox:latest" }]);

    const rmi = moat(other, "rmi", "moat.local/busybox");
    assert.equal(rmi.code, 0, rmi.stderr);
    assert.deepEqual(moat(other, "images").lines, []);
    assert.deepEqual(await fs.readdir(path.join(other, "images/blobs/sha256")), []);
  });

  test("errors: a JSON line on stderr with a code, a non-zero exit, nothing changed", () => {
    const r = moat(root, "rmi", "example.com/never:1");
    assert.equal(r.code, 125);
    const err = JSON.parse(r.stderr.trim().split("\n").pop()!);
    assert.equal(err.level, "error");
    assert.equal(err.code, "ENOENT");
    assert.match(err.msg, /moat images lists/);

    const bad = moat(root, "pull", "Not A Reference");
    assert.equal(bad.code, 125);
    assert.equal(JSON.parse(bad.stderr.trim()).code, "EINVAL");

    const unknown = moat(root, "frobnicate");
    assert.equal(unknown.code, 125);
    assert.match(JSON.parse(unknown.stderr.trim()).msg, /unknown command "frobnicate"/);
  });
});

/** moat run on a terminal (script(1) gives it one), for the human table. */
function moatOnTty(root: string, ...args: string[]): string {
  const cmd = [process.execPath, MAIN, "--root", root, ...args].map((a) => `'${a}'`).join(" ");
  const r = spawnSync("script", ["-qec", cmd, "/dev/null"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  return r.stdout.replace(/\r/g, "");
}

describe("moat image commands on images pulled from a registry", () => {
  let reg: TestRegistry;
  const src = tempDir();
  const threeDaysAgo = new Date(Date.now() - 3 * 86_400_000 - 3_600_000).toISOString();
  // Two images with real configs (a "config" object of Env and Cmd) sharing a bottom layer.
  const built: Record<"a" | "b", { manifest: string; config: string; size: number }> = {} as never;
  let refA = "";
  let refB = "";
  before(async () => {
    reg = await startRegistry("plain");
    refA = `${reg.addr}/app/a:1`;
    refB = `${reg.addr}/app/b:1`;
    const store = await ImageStore.open(src);
    const file = (name: string, text: string) =>
      packLayer([{ name, type: "file", mode: 0o644, content: Buffer.from(text) }]);
    const shared = await file("shared", "in both images\n");
    for (const [k, own] of [
      ["a", await file("a", "only in a\n")],
      ["b", await file("b", "only in b\n")],
    ] as const) {
      const r = await buildImage(store, {
        layers: [shared, own],
        config: { Env: ["PATH=/bin"], Cmd: ["sh"], WorkingDir: "/" },
        created: threeDaysAgo,
        name: `example.com/${k}:1`,
      });
      const m = await store.readJson<ImageManifest>(r.manifestDigest);
      built[k] = {
        manifest: r.manifestDigest,
        config: r.configDigest,
        size: m.config.size + m.layers.reduce((n, l) => n + l.size, 0),
      };
    }
    const layout = path.join(tempDir(), "layout");
    await saveImages(store, ["example.com/a:1", "example.com/b:1"], layout, { directory: true });
    await pushLayout(layout, reg.addr, "app/a:1", undefined, "example.com/a:1");
    await pushLayout(layout, reg.addr, "app/b:1", undefined, "example.com/b:1");
  });
  after(async () => {
    await reg?.stop();
  });

  const blobs = (root: string) => fs.readdir(path.join(root, "images/blobs/sha256"));
  const layers = (root: string) => fs.readdir(path.join(root, "layers/sha256"));

  test("pull, images (age and size), gc, rmi one image then the other: blobs and layers freed", async () => {
    const root = tempDir();
    for (const ref of [refA, refB]) {
      const p = moat(root, "pull", ref);
      assert.equal(p.code, 0, p.stderr);
      // Unpack the layers, as a run does (copy mode leaves no lease behind).
      const dir = path.join(tempDir(), "bundle");
      assert.equal(moat(root, "bundle", "--rootfs-mode", "copy", ref, dir).code, 0);
      assert.equal(moat(root, "bundle", "--remove", dir).code, 0);
    }
    assert.equal((await layers(root)).length, 3, "shared + one per image");

    // gc with images whose configs have a "config" object: nothing to free, no error.
    const gc = moat(root, "gc");
    assert.equal(gc.code, 0, gc.stderr);
    assert.deepEqual(gc.lines, [{ removed: { blobs: 0, layers: 0, bytes: 0 } }]);

    const images = moat(root, "images");
    assert.deepEqual(
      images.lines.map((l) => [l.name, l.digest, l.created, l.size]),
      [
        [refA, built.a.manifest, threeDaysAgo, built.a.size],
        [refB, built.b.manifest, threeDaysAgo, built.b.size],
      ],
    );
    const table = moatOnTty(root, "images").split("\n");
    assert.match(table[0]!, /^NAME\s+DIGEST\s+PLATFORM\s+CREATED\s+SIZE$/);
    const rowA = table.find((l) => l.startsWith(refA))!;
    assert.ok(rowA.includes("3 days ago"), rowA);
    assert.ok(rowA.endsWith(humanSize(built.a.size)), rowA);

    // A name that is not there: nothing untagged, nothing freed.
    const before = (await blobs(root)).sort();
    const bad = moat(root, "rmi", refA, "example.com/never:1");
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /no image named example.com\/never:1: nothing was removed/);
    assert.equal(moat(root, "images").lines.length, 2);
    assert.deepEqual((await blobs(root)).sort(), before);

    const rmi = moat(root, "rmi", refA);
    assert.equal(rmi.code, 0, rmi.stderr);
    assert.deepEqual(rmi.lines[0], { untagged: refA });
    assert.deepEqual(
      moat(root, "images").lines.map((l) => l.name),
      [refB],
    );
    const mB = JSON.parse(
      await fs.readFile(path.join(root, "images/blobs/sha256", built.b.manifest.slice(7)), "utf8"),
    );
    const keptB = [built.b.manifest, built.b.config, ...mB.layers.map((l: { digest: string }) => l.digest)];
    assert.deepEqual((await blobs(root)).sort(), keptB.map((d) => d.slice(7)).sort(), "only b's blobs");
    const configB = JSON.parse(
      await fs.readFile(path.join(root, "images/blobs/sha256", built.b.config.slice(7)), "utf8"),
    );
    assert.deepEqual(
      (await layers(root)).sort(),
      configB.rootfs.diff_ids.map((d: string) => d.slice(7)).sort(),
      "a's own unpacked layer is gone, the shared one stays",
    );
    assert.equal(rmi.lines[1]!.removed && (rmi.lines[1]!.removed as { layers: number }).layers, 1);

    assert.equal(moat(root, "rmi", refB).code, 0);
    assert.deepEqual(await blobs(root), []);
    assert.deepEqual(await layers(root), []);
  });

  test("pull --platform of a single-platform image it is not for is refused, and stores no name", async () => {
    const root = tempDir();
    const r = moat(root, "pull", "--platform", "linux/arm64", refA);
    assert.notEqual(r.code, 0);
    assert.equal(JSON.parse(r.stderr.trim()).code, "ENOPLATFORM");
    assert.match(
      r.stderr,
      new RegExp(
        `image with reference ${refA} was found but does not match the specified platform: wanted linux/arm64, actual: linux/amd64`,
      ),
    );
    assert.deepEqual(moat(root, "images").lines, []);
    assert.deepEqual(await fs.readdir(path.join(root, "leases")), []);
    const ok = moat(root, "pull", "--platform", "linux/amd64", refA);
    assert.equal(ok.code, 0, ok.stderr);
  });

  test("load --name tags the image as asked; an archive of several images makes --name an error", async () => {
    const tarA = path.join(tempDir(), "a.tar");
    const both = path.join(tempDir(), "both.tar");
    assert.equal(moat(src, "save", "-o", tarA, "example.com/a:1").code, 0);
    assert.equal(moat(src, "save", "-o", both, "example.com/a:1", "example.com/b:1").code, 0);

    const root = tempDir();
    const load = moat(root, "load", "--name", "x:1", tarA);
    assert.equal(load.code, 0, load.stderr);
    assert.deepEqual(load.lines, [{ loaded: "docker.io/library/x:1" }]);
    assert.deepEqual(
      moat(root, "images").lines.map((l) => [l.name, l.digest]),
      [["docker.io/library/x:1", built.a.manifest]],
    );

    const other = tempDir();
    const amb = moat(other, "load", "--name", "x:1", both);
    assert.notEqual(amb.code, 0);
    assert.match(amb.stderr, /holds 2 images, so --name x:1 does not say which one/);
    assert.deepEqual(moat(other, "images").lines, []);
    // Without --name the archive's own names are kept.
    assert.deepEqual(
      moat(other, "load", both).lines.map((l) => l.loaded),
      ["example.com/a:1", "example.com/b:1"],
    );
  });
});

describe("moat as a user who cannot write the store root", () => {
  const asNobody = (root: string, ...args: string[]) =>
    spawnSync(
      "setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, MAIN, "--root", root, ...args],
      { encoding: "utf8" },
    );

  test("a root-owned 0700 root, and an existing store in a 0755 one: a clear error, not EACCES", async () => {
    const closed = tempDir(); // mkdtemp: root's, mode 0700
    const open = tempDir();
    await ImageStore.open(open);
    await fs.chmod(open, 0o755);
    for (const root of [closed, open]) {
      const r = asNobody(root, "images");
      assert.notEqual(r.status, 0);
      assert.match(
        r.stderr,
        new RegExp(`^moat: the store at ${root} is not writable by user 65534 \\(EACCES on `),
      );
      assert.match(
        r.stderr,
        /run moat as root \(sudo\), or pass --root DIR \(or set MOAT_ROOT=DIR\) to a directory you own\n$/,
      );
      assert.doesNotMatch(r.stderr, /EACCES: permission denied/);
    }
    const json = asNobody(closed, "--json", "images");
    assert.equal(JSON.parse(json.stderr.trim()).code, "EACCES");
    // What the message advises works: a root of the user's own.
    const own = tempDir();
    await fs.chown(own, 65534, 65534);
    const ok = asNobody(own, "images");
    assert.equal(ok.status, 0, ok.stderr);
  });
});
