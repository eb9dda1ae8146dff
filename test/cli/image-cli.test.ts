// The moat command as a person or a script drives it: JSON when piped, clear errors, exit codes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, describe, test } from "node:test";
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
