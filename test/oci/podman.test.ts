// podman drives moat as its OCI runtime (--runtime), exactly as it drives runc: conmon calls
// create with its own pipes as the container's stdio, then start, state and delete. The image
// is moat's built-in busybox, saved by moat as an OCI archive and loaded into a private
// podman store. Needs the Debian package podman (with conmon).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { sandboxDir } from "../../src/oci/state.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";
import { killAll, leftovers, MAIN, waitFor } from "./helpers.js";

const base = tempDir("moat-oci-podman-");
const stateRoot = path.join(base, "moat-state");
const podmanArgs = [
  "--root",
  path.join(base, "storage"),
  "--runroot",
  path.join(base, "run"),
  "--cgroup-manager",
  "cgroupfs",
  "--storage-driver",
  "vfs",
  "--runtime",
  path.join(base, "moat-runtime"),
];

function podman(args: string[]) {
  return spawnSync("podman", [...podmanArgs, ...args], { encoding: "utf8", timeout: 180_000 });
}

after(() => {
  killAll(leftovers(stateRoot));
  podman(["rm", "-a", "-f"]);
  podman(["rmi", "-a", "-f"]);
  cleanupTempDirs();
});

let ready = false;

/** The runtime wrapper and the test image in podman's private store, once for every test. */
function setUp(): void {
  if (ready) return;
  // The runtime podman runs: a wrapper that execs moat's CLI with this node. It sets the state
  // root itself because podman's cleanup process calls delete without --runtime-flag's flags.
  fs.writeFileSync(
    path.join(base, "moat-runtime"),
    `#!/bin/sh\nexec "${process.execPath}" "${MAIN}" --root "${stateRoot}" "$@"\n`,
    {
      mode: 0o755,
    },
  );
  const archive = path.join(base, "busybox.tar");
  const saved = spawnSync(
    process.execPath,
    [MAIN, "--root", path.join(base, "moat-images"), "save", "-o", archive, "default"],
    { encoding: "utf8" },
  );
  assert.equal(saved.status, 0, saved.stderr);
  const loaded = podman(["load", "-i", archive]);
  assert.equal(loaded.status, 0, loaded.stderr);
  assert.match(loaded.stdout, /moat\.local\/busybox/);
  ready = true;
}

test("podman --runtime moat run --rm: output and exit status of a userkernel container", async () => {
  setUp();
  const r = podman([
    "run",
    "--rm",
    "--network",
    "none",
    "--annotation",
    "run.moat.isolation=userkernel",
    "moat.local/busybox:latest",
    "sh",
    "-c",
    "echo hello from podman; exit 5",
  ]);
  assert.equal(r.stdout, "hello from podman\n", r.stderr);
  assert.equal(r.status, 5, r.stderr);
  // --rm: podman deletes the container through moat (conmon's cleanup runs after run returns),
  // and moat leaves nothing behind.
  const entries = () => (fs.existsSync(stateRoot) ? fs.readdirSync(stateRoot) : []);
  await waitFor(() => entries().length === 0, 60_000, "podman's delete of the container");
  assert.deepEqual(leftovers(stateRoot), []);
});

/** `podman exec` of a running container, through conmon: `moat exec --detach --process`. */
function checkExec(name: string): void {
  const r = podman(["exec", name, "sh", "-c", "echo exec says hi; echo on stderr >&2; exit 3"]);
  assert.equal(r.stdout, "exec says hi\n", r.stderr);
  assert.match(r.stderr, /on stderr/);
  assert.equal(r.status, 3);
  const env = podman(["exec", "-e", "WHO=podman", "-w", "/tmp", name, "sh", "-c", 'echo "$WHO in $PWD"']);
  assert.equal(env.stdout, "podman in /tmp\n", env.stderr);
  assert.equal(env.status, 0);
  const input = spawnSync("podman", [...podmanArgs, "exec", "-i", name, "cat"], {
    encoding: "utf8",
    input: "piped through podman exec -i\n",
    timeout: 180_000,
  });
  assert.equal(input.stdout, "piped through podman exec -i\n", input.stderr);
}

for (const isolation of ["userkernel", "vm"]) {
  test(`podman exec into a running ${isolation} container; rm -f leaves nothing`, async () => {
    setUp();
    const name = `exec-${isolation}`;
    const started = podman([
      "run",
      "-d",
      "--name",
      name,
      "--network",
      "none",
      "--annotation",
      `run.moat.isolation=${isolation}`,
      "moat.local/busybox:latest",
      "sleep",
      "900",
    ]);
    assert.equal(started.status, 0, started.stderr);
    checkExec(name);
    const id = podman(["inspect", "--format", "{{.Id}}", name]).stdout.trim();
    // podman's 64-hex ids make the state directory too long for the VM's sockets: the
    // sandbox's files live in a short directory instead, which rm must remove too.
    const sbDir = sandboxDir(stateRoot, id);
    if (isolation === "vm")
      assert.ok(fs.existsSync(sbDir), `the sandbox directory ${sbDir} exists while it runs`);
    const rm = podman(["rm", "-f", "-t", "0", name]);
    assert.equal(rm.status, 0, rm.stderr);
    const entries = () => (fs.existsSync(stateRoot) ? fs.readdirSync(stateRoot) : []);
    await waitFor(() => entries().length === 0, 60_000, "podman's delete of the container");
    assert.deepEqual(leftovers(stateRoot), []);
    assert.equal(fs.existsSync(sbDir), false, "no sandbox directory left");
  });
}
