// The guest's OOM killer and the VM's own death, on one real 128 MiB guest: a container
// that fills memory is the one killed (exit 137, oomKilled), the agent survives it and the
// sandbox goes on working; a VM that dies under its containers fails their waits with a
// MoatError quoting the VM, not a bare "connection lost" or an unhandled rejection.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { removeBundle } from "../../src/image/bundle.js";
import type { Sandbox } from "../../src/sandbox/sandbox.js";
import { MoatError } from "../../src/spec/errors.js";
import type { Spec } from "../../src/spec/runtime.js";
import { VmBackend } from "../../src/vm/sandbox.js";
import { Collector } from "../helpers/streams.js";
import {
  alive,
  defaultBundle,
  destroyAndCheck,
  qemuProcessesMentioning,
  startIn,
  waitUntil,
} from "./helpers.js";

describe("vm sandbox under memory pressure", () => {
  let tmp: string;
  let bundle: { bundleDir: string; spec: Spec; rootfs: string };
  let stateDir: string;
  let sandbox: Sandbox | undefined;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);

  before(async () => {
    process.on("unhandledRejection", onUnhandled);
    const b = await defaultBundle("moat-vm-oom-test-");
    tmp = b.tmp;
    bundle = b;
    stateDir = join(tmp, "state");
    sandbox = await new VmBackend().createSandbox({
      id: "vm-oom",
      stateDir,
      memoryMiB: 128,
      network: "none",
    });
  });

  after(async () => {
    process.off("unhandledRejection", onUnhandled);
    try {
      await destroyAndCheck(sandbox, tmp, stateDir);
    } finally {
      for (const pid of qemuProcessesMentioning(tmp)) process.kill(pid, "SIGKILL");
      if (bundle) await removeBundle(bundle.bundleDir).catch(() => {});
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  async function exec(containerId: string, execId: string, script: string) {
    const stdout = new Collector();
    const stderr = new Collector();
    await sandbox!.exec({
      containerId,
      execId,
      process: { ...bundle.spec.process!, args: ["sh", "-c", script] },
      stdio: { stdout, stderr },
    });
    return { stdout, stderr, status: await sandbox!.wait(containerId, execId) };
  }

  it("a container filling tmpfs is OOM-killed (137, oomKilled), not the agent; the sandbox goes on", async () => {
    // dd is the container's init: the OOM killer ends it (SIGKILL) rather than the agent.
    const hog = await startIn(sandbox!, bundle, "hog", [
      "dd",
      "if=/dev/zero",
      "of=/dev/shm/fill",
      "bs=1M",
      "count=400",
    ]);
    const st = await hog.done;
    assert.equal(st.status, 137, `dd: ${hog.stderr.text()}`);
    assert.equal(st.signal, "SIGKILL");
    assert.equal(st.oomKilled, true, "the exit is reported as the OOM killer's");
    // Its tmpfs goes with it, and the same guest runs the next container: the agent lived.
    await sandbox!.delete("hog");
    const next = await startIn(sandbox!, bundle, "next", [
      "sh",
      "-c",
      "cat /proc/self/oom_score_adj; sleep 600",
    ]);
    assert.ok(await waitUntil(() => next.stdout.text() !== "", 60_000), "the second container runs");
    // A container process takes the kernel's default score, not the agent's -997.
    assert.equal(next.stdout.text(), "0\n");
  });

  it("an exec that allocates too much is OOM-killed; the others are not marked", async () => {
    // tail keeps a line without end in memory; the shell above it reports 137.
    const big = await exec("next", "big", "head -c 400m /dev/zero | tail; exit $?");
    assert.equal(big.status.status, 137, big.stderr.text());
    assert.equal(big.status.oomKilled, true);
    const fine = await exec("next", "fine", "echo still here; kill -9 $$");
    assert.equal(fine.stdout.text(), "still here\n");
    assert.equal(fine.status.status, 137);
    assert.equal(fine.status.oomKilled, undefined, "a SIGKILL with no OOM kill is not the OOM killer's");
  });

  it("a VM that dies under its containers fails their waits with a MoatError that quotes it", async () => {
    const [qemu] = qemuProcessesMentioning(tmp);
    assert.ok(qemu !== undefined, "the sandbox's QEMU runs");
    const waiting = sandbox!.wait("next");
    process.kill(qemu, "SIGKILL");
    await assert.rejects(waiting, (e: unknown) => {
      assert.ok(e instanceof MoatError, String(e));
      assert.equal(e.code, "EIO");
      assert.match(e.message, /the VM exited unexpectedly \(QEMU killed by SIGKILL\)/);
      assert.match(e.message, /guest console/);
      return true;
    });
    assert.ok(await waitUntil(() => !alive(qemu), 5_000));
    await assert.rejects(sandbox!.signal("next", "SIGTERM"), /the VM exited unexpectedly/);
    // Let any stray rejection surface before the check.
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(unhandled, [], "no promise rejection went unhandled");
  });
});
