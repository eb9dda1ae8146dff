// The accelerator choice and its cache. The probe is a real function the caller gives;
// here it stands for a guest boot that succeeds or fails, since this host has no KVM.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ACCEL_CACHE, chooseAccel } from "../../src/vm/hypervisor/accel.js";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "moat-vm-accel-"));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("accelerator choice", () => {
  it("uses TCG without probing when the KVM device cannot be opened", async () => {
    const cacheDir = tmp();
    let probes = 0;
    const c = await chooseAccel({
      cacheDir,
      kvmDevice: join(cacheDir, "no-kvm"),
      probe: async () => {
        probes++;
      },
    });
    assert.equal(c.accel, "tcg");
    assert.match(c.reason, /cannot be opened \(ENOENT\)/);
    assert.equal(probes, 0);
    assert.equal(JSON.parse(readFileSync(join(cacheDir, ACCEL_CACHE), "utf8")).accel, "tcg");
  });

  it("falls back to TCG when the probe boot fails, and caches the verdict", async () => {
    const cacheDir = tmp();
    let probes = 0;
    const probe = async () => {
      probes++;
      throw new Error("KVM internal error: emulation failure");
    };
    // /dev/null opens read-write, standing in for a KVM device that opens but cannot run guests.
    const first = await chooseAccel({ cacheDir, kvmDevice: "/dev/null", probe });
    assert.equal(first.accel, "tcg");
    assert.match(first.reason, /emulation failure/);
    const second = await chooseAccel({ cacheDir, kvmDevice: "/dev/null", probe });
    assert.equal(second.accel, "tcg");
    assert.equal(probes, 1, "the probe boot ran again despite the cache");
    const cached = JSON.parse(readFileSync(join(cacheDir, ACCEL_CACHE), "utf8"));
    assert.equal(cached.hostKernel, release());
  });

  it("chooses KVM after a successful probe", async () => {
    const cacheDir = tmp();
    let probes = 0;
    const probe = async () => {
      probes++;
    };
    assert.equal((await chooseAccel({ cacheDir, kvmDevice: "/dev/null", probe })).accel, "kvm");
    assert.equal((await chooseAccel({ cacheDir, kvmDevice: "/dev/null", probe })).accel, "kvm");
    assert.equal(probes, 1);
  });
});
