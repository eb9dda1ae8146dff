// podman drives moat as its OCI runtime (--runtime), exactly as it drives runc: conmon calls
// create with its own pipes as the container's stdio, then start, state and delete. The image
// is moat's built-in busybox, saved by moat as an OCI archive and loaded into a private
// podman store. Needs the Debian package podman (with conmon).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
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

test("podman --runtime moat run --rm: output and exit status of a userkernel container", async () => {
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
