// A vm sandbox with volumes whose process is SIGKILLed: QEMU dies with it, and the host
// binds it leaves all lie under its state dir, where the cleanups of `moat delete --force`
// and the shim (unmount everything under the directory) find them; the volume's data,
// written by the guest, survives that cleanup. One VM, in a child process.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createBundle, removeBundle } from "../../src/image/bundle.js";
import { DEFAULT_IMAGE, ensureDefaultImage } from "../../src/image/default-image.js";
import { ImageStore } from "../../src/image/store.js";
import { mountsUnder, unmountAll } from "../../src/sys/mounts.js";
import { ensureAssets } from "../../src/vm/assets/build.js";
import { qemuProcessesMentioning, waitUntil } from "./helpers.js";

const here = dirname(fileURLToPath(import.meta.url));

describe("vm sandbox with volumes, killed hard", () => {
  let tmp: string;
  let bundleDir: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "moat-vm-mounts-kill-test-"));
    await ensureAssets();
    const store = await ImageStore.open(join(tmp, "root"));
    await ensureDefaultImage(store);
    bundleDir = join(tmp, "bundle");
    await createBundle(store, DEFAULT_IMAGE, bundleDir);
  });

  after(async () => {
    for (const pid of qemuProcessesMentioning(tmp)) process.kill(pid, "SIGKILL");
    unmountAll(mountsUnder(join(tmp, "state")));
    if (bundleDir) await removeBundle(bundleDir).catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
  });

  it("leaves its binds only under the state dir, and unmounting them there keeps the data", async () => {
    const stateDir = join(tmp, "state");
    const volume = join(tmp, "volume");
    mkdirSync(volume);
    const child = spawn(
      process.execPath,
      [join(here, "fixtures", "sandbox-with-volume.js"), stateDir, bundleDir, volume],
      { env: { ...process.env, MOAT_VM_FIXTURE: "volume" }, stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        let out = "";
        child.stdout.setEncoding("utf8");
        child.stdout.on("data", (d: string) => {
          out += d;
          if (out.includes("ready\n")) resolve();
        });
        child.once("exit", (code) => reject(new Error(`fixture exited with ${code}: ${out}`)));
      });
      assert.ok(
        // Created, then written: two 9p requests, so wait for the content, not the name.
        await waitUntil(
          () =>
            existsSync(join(volume, "killed")) &&
            readFileSync(join(volume, "killed"), "utf8") === "from-guest\n",
          30_000,
        ),
        "the guest wrote to the volume",
      );
      child.kill("SIGKILL");
      assert.ok(
        await waitUntil(() => qemuProcessesMentioning(tmp).length === 0, 10_000),
        "QEMU died with moat",
      );
    } finally {
      child.kill("SIGKILL");
    }
    // The rootfs share and both volume binds stay mounted after the kill, all of them
    // under the state dir: every mount of the volume's directory is one of moat's two.
    const left = mountsUnder(stateDir);
    const ofVolume = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .filter((f) => f[3] === volume)
      .map((f) => f[4]!);
    assert.equal(ofVolume.length, 2, ofVolume.join("\n"));
    for (const m of ofVolume) assert.ok(m.startsWith(`${join(stateDir, "volumes", "c1")}/`), m);
    assert.ok(left.includes(join(stateDir, "share", "c1")), left.join("\n"));
    unmountAll(left);
    assert.deepEqual(mountsUnder(stateDir), []);
    rmSync(stateDir, { recursive: true, force: true });
    assert.equal(readFileSync(join(volume, "killed"), "utf8"), "from-guest\n");
  });
});
