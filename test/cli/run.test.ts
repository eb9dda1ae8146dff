// `moat run` end to end, as a person types it: the container's output is ours, its exit
// status is ours, stdin flows with -i, and nothing is left behind.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { cleanupTempDirs, mountsUnder, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

const MAIN = new URL("../../src/cli/main.js", import.meta.url).pathname;

describe("moat run --isolation userkernel", () => {
  const root = tempDir();
  const moat = (args: string[], input?: string) =>
    spawnSync(process.execPath, [MAIN, "--root", root, ...args], { encoding: "utf8", input: input ?? "" });

  test("the README's main job: the default image says hello", () => {
    const r = moat(["run", "default", "echo", "hello", "from", "moat"]);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, "hello from moat\n");
    assert.equal(r.status, 0);
  });

  test("exit status, stderr, stdin with -i, env and workdir", () => {
    const r = moat(["run", "--isolation", "userkernel", "default", "sh", "-c", "echo oops >&2; exit 42"]);
    assert.equal(r.status, 42);
    assert.equal(r.stderr, "oops\n");
    const cat = moat(["run", "-i", "default", "tr", "a-z", "A-Z"], "piped in\n");
    assert.equal(cat.stdout, "PIPED IN\n");
    // (no $(...): command substitution forks, and the userkernel has no fork yet)
    const env = moat([
      "run",
      "-e",
      "GREETING=hi",
      "-w",
      "/etc",
      "default",
      "sh",
      "-c",
      'echo "$GREETING"; pwd',
    ]);
    assert.equal(env.stdout, "hi\n/etc\n");
  });

  test("errors are clear and leave no bundle or mount", async () => {
    const r = moat(["run", "--isolation", "nonsense", "default", "true"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown isolation "nonsense"/);
    const missing = moat(["run", "default", "/bin/not-there"]);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /not-there/);
    assert.deepEqual(await fs.readdir(path.join(root, "bundles")), []);
    assert.deepEqual(mountsUnder(root), []);
  });
});
