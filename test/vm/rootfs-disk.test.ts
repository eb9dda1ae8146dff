// A sandbox's first container can have its rootfs as an erofs image on a read-only
// virtio-blk disk (MOAT_VM_ROOTFS=block) instead of the 9p share: on one real guest, the
// container reads its image from the disk, writes land in its overlay and never in the
// image, and a second container of the same rootfs, which the disk is not for, uses 9p.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { removeBundle } from "../../src/image/bundle.js";
import type { Sandbox } from "../../src/sandbox/sandbox.js";
import type { Spec } from "../../src/spec/runtime.js";
import { VmBackend } from "../../src/vm/sandbox.js";
import { defaultBundle, destroyAndCheck, qemuProcessesMentioning, shellIn } from "./helpers.js";

describe("vm rootfs on a disk", () => {
  let tmp: string;
  let bundleDir: string;
  let spec: Spec;
  let rootfs: string;
  let stateDir: string;
  let sandbox: Sandbox | undefined;
  let n = 0;
  const saved = process.env.MOAT_VM_ROOTFS;

  before(async () => {
    ({ tmp, bundleDir, spec, rootfs } = await defaultBundle("moat-vm-disk-test-"));
    stateDir = join(tmp, "state");
    process.env.MOAT_VM_ROOTFS = "block";
    sandbox = await new VmBackend().createSandbox({
      id: "disk-test",
      stateDir,
      firstRootfs: rootfs,
      network: "none",
    });
  });

  after(async () => {
    if (saved === undefined) delete process.env.MOAT_VM_ROOTFS;
    else process.env.MOAT_VM_ROOTFS = saved;
    try {
      await destroyAndCheck(sandbox, tmp, stateDir);
    } finally {
      for (const pid of qemuProcessesMentioning(tmp)) process.kill(pid, "SIGKILL");
      await removeBundle(bundleDir).catch(() => {});
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  async function run(script: string): Promise<{ id: string; out: string }> {
    const id = `c${++n}`;
    return { id, out: await shellIn(sandbox!, { bundleDir, spec, rootfs }, id, script) };
  }

  const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

  it("reads the first container's image from the disk, and writes never reach it", async () => {
    const image = join(stateDir, "rootfs-0.erofs");
    assert.ok(existsSync(image), "the rootfs image was written before the VM started");
    const before = sha(image);
    const r = await run(
      "grep ' / / ' /proc/self/mountinfo; cat /etc/passwd | head -1; echo changed > /bin/busybox-note; cat /bin/busybox-note",
    );
    const [root, passwd, note] = r.out.trim().split("\n");
    assert.match(
      root!,
      /lowerdir=\/run\/moat\/c\/c1\/lower/,
      "the overlay's lower layer is the disk's mount",
    );
    assert.equal(passwd, readFileSync(join(rootfs, "etc/passwd"), "utf8").split("\n")[0]);
    assert.equal(note, "changed");
    assert.equal(sha(image), before, "the image is unchanged");
    assert.equal(existsSync(join(rootfs, "bin/busybox-note")), false, "the bundle is unchanged");
  });

  it("gives a later container of the same rootfs the 9p share, and the first one keeps its disk", async () => {
    const r = await run("grep ' / / ' /proc/self/mountinfo; test ! -e /bin/busybox-note");
    assert.match(
      r.out,
      /lowerdir=\/run\/moat\/share\/c2/,
      "the disk holds the rootfs as it was: one container only",
    );
  });
});
