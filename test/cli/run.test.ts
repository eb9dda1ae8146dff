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
    // (builtins only: command substitution and non-final commands fork, and the userkernel has no fork yet)
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
    assert.equal(r.status, 125);
    assert.match(r.stderr, /unknown isolation "nonsense"/);
    const missing = moat(["run", "default", "/bin/not-there"]);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /not-there/);
    assert.deepEqual(await fs.readdir(path.join(root, "bundles")), []);
    assert.deepEqual(mountsUnder(root), []);
  });

  test("an OCI bundle directory runs as it is, in both isolations", async () => {
    const dir = path.join(tempDir(), "bundle");
    const made = spawnSync(
      process.execPath,
      [MAIN, "--root", root, "bundle", "default", dir, "cat", "/proc/version"],
      {
        encoding: "utf8",
      },
    );
    assert.equal(made.status, 0, made.stderr);
    const uk = moat(["run", "--isolation", "userkernel", dir]);
    assert.equal(uk.status, 0, uk.stderr);
    assert.match(uk.stdout, /moat/);
    // The vm: a real guest kernel (Debian's), not the host's and not the userkernel's.
    // A command after the bundle replaces its process.args.
    const vm = moat([
      "run",
      "--isolation",
      "vm",
      "--memory",
      "512m",
      "--cpus",
      "1",
      dir,
      "sh",
      "-c",
      "cat /proc/version; echo e >&2; exit 5",
    ]);
    assert.equal(vm.status, 5, vm.stderr);
    assert.equal(vm.stderr, "e\n");
    assert.doesNotMatch(vm.stdout, new RegExp((await import("node:os")).release().replace(/[.+]/g, "\\$&")));
    assert.doesNotMatch(vm.stdout, /moat/);
    assert.match(vm.stdout, /^Linux version \d+\.\d+\.\d+-\d+-amd64 /);
    // the bundle is the caller's: it is still there
    assert.ok((await fs.stat(path.join(dir, "config.json"))).isFile());
    spawnSync(process.execPath, [MAIN, "--root", root, "bundle", "--remove", dir]);
    assert.deepEqual(mountsUnder(dir), []);
  });

  test("bad sizes are refused before anything starts", () => {
    const r = moat(["run", "--memory", "12x", "default", "true"]);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /--memory "12x" is not a size/);
    const c = moat(["run", "--cpus", "0", "default", "true"]);
    assert.match(c.stderr, /--cpus 0/);
  });
});
