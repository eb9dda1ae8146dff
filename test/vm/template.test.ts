// VM templates, on real QEMU guests: the first sandbox of a shape makes the template (one
// boot), later ones are clones resumed from it; each clone gets its own randomness and the
// host's time; a template QEMU cannot load is dropped and the sandbox boots instead; and
// nothing (QEMU, temp directory, mount) is left behind. The tests use a RAM size no other
// test uses, so the template they make and break is their own.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { removeBundle } from "../../src/image/bundle.js";
import type { Sandbox } from "../../src/sandbox/sandbox.js";
import type { Spec } from "../../src/spec/runtime.js";
import { mountsUnder } from "../../src/sys/mounts.js";
import { pidAlive } from "../../src/sys/pids.js";
import { ensureAssets } from "../../src/vm/assets/build.js";
import { moatRoot } from "../../src/vm/assets/manifest.js";
import { VmBackend } from "../../src/vm/sandbox.js";
import { templateRoot } from "../../src/vm/template.js";
import { defaultBundle, qemuProcessesMentioning, shellIn } from "./helpers.js";

/** Only these tests boot guests of this size, so the template of this shape is theirs. */
const MEMORY_MIB = 336;

interface Booted {
  bootedFrom: "boot" | "template";
  templateError: string | undefined;
}

/** This test's templates (by their shape's RAM size), and their directories. */
function ourTemplates(): string[] {
  const root = templateRoot(moatRoot());
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((name) => !name.startsWith("."))
    .map((name) => join(root, name))
    .filter((dir) => {
      try {
        const meta = JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")) as {
          shape: { memoryMiB: number };
        };
        return meta.shape.memoryMiB === MEMORY_MIB;
      } catch {
        return false;
      }
    });
}

function dropOurTemplates(): void {
  for (const dir of ourTemplates()) rmSync(dir, { recursive: true, force: true });
}

describe("vm templates", () => {
  let tmp: string;
  let bundleDir: string;
  let spec: Spec;
  let rootfs: string;
  const sandboxes: Sandbox[] = [];
  let kernelRelease: string;
  let n = 0;
  const saved = process.env.MOAT_VM_TEMPLATE;

  before(async () => {
    kernelRelease = (await ensureAssets()).manifest.kernelRelease;
    ({ tmp, bundleDir, spec, rootfs } = await defaultBundle("moat-vm-template-test-"));
    dropOurTemplates();
    process.env.MOAT_VM_TEMPLATE = "1";
  });

  after(async () => {
    if (saved === undefined) delete process.env.MOAT_VM_TEMPLATE;
    else process.env.MOAT_VM_TEMPLATE = saved;
    try {
      await Promise.all(sandboxes.map((s) => s.destroy()));
      assert.deepEqual(qemuProcessesMentioning(tmp), [], "no QEMU outlives destroy()");
      assert.deepEqual(qemuProcessesMentioning("vm-templates"), [], "no template QEMU is left running");
      assert.deepEqual(mountsUnder(join(tmp, "state")), [], "no mount outlives destroy()");
      const root = templateRoot(moatRoot());
      const leftovers = existsSync(root) ? readdirSync(root).filter((n) => n.startsWith(".")) : [];
      assert.deepEqual(leftovers, [], "no half-made or dropped template is left");
    } finally {
      for (const pid of qemuProcessesMentioning(tmp)) process.kill(pid, "SIGKILL");
      dropOurTemplates();
      await removeBundle(bundleDir).catch(() => {});
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  async function sandbox(): Promise<Sandbox & Booted> {
    const sb = await new VmBackend().createSandbox({
      id: `tpl-${++n}`,
      stateDir: join(tmp, `state-${n}`),
      memoryMiB: MEMORY_MIB,
      network: "none",
    });
    sandboxes.push(sb);
    return sb as Sandbox & Booted;
  }

  async function run(sb: Sandbox, script: string): Promise<string> {
    const id = `c${++n}`;
    const out = await shellIn(sb, { bundleDir, spec, rootfs }, id, script);
    await sb.delete(id);
    return out;
  }

  it("resumes clones of one template, each with its own randomness and the host's time", async () => {
    const first = await sandbox();
    assert.equal(first.templateError, undefined);
    assert.equal(first.bootedFrom, "template", "the first sandbox makes the template and is its first clone");
    assert.equal(ourTemplates().length, 1, "one template of this shape");
    // What a maker killed halfway leaves: a temp directory named after its dead pid.
    let deadPid = 4_000_000;
    while (pidAlive(deadPid)) deadPid--;
    const leftover = join(templateRoot(moatRoot()), `.0123abcd.tmp-${deadPid}-00000000`);
    mkdirSync(leftover);
    writeFileSync(join(leftover, "memory"), "half made");
    const second = await sandbox();
    assert.equal(second.bootedFrom, "template", second.templateError);
    assert.equal(ourTemplates().length, 1, "the second sandbox reuses the template");
    assert.equal(existsSync(leftover), false, "a dead maker's leftovers are removed");

    const probe = "uname -r; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; date +%s";
    const [a, b] = await Promise.all([run(first, probe), run(second, probe)]);
    const [unameA, randomA, timeA] = a.trim().split("\n");
    const [unameB, randomB, timeB] = b.trim().split("\n");
    assert.equal(unameA, kernelRelease);
    assert.equal(unameB, kernelRelease);
    assert.match(randomA!, /^[0-9a-f]{64}$/);
    assert.notEqual(randomA, randomB, "two clones of one template draw different random bytes");
    const now = Date.now() / 1000;
    for (const t of [timeA, timeB]) {
      // The template paused minutes ago at most; its clones' clocks are the host's.
      assert.ok(Math.abs(Number(t) - now) < 60, `guest time ${t} is the host's ${Math.round(now)}`);
    }
    // Writes inside one clone stay its own: the template's memory is mapped copy-on-write.
    await run(first, "echo mine > /tmp/only-here; test -f /tmp/only-here");
    assert.equal((await run(second, "test -e /tmp/only-here && echo seen || echo absent")).trim(), "absent");
    await Promise.all([first.destroy(), second.destroy()]);
  });

  it("remakes a template older than its maximum age", async () => {
    const [dir] = ourTemplates();
    assert.ok(dir, "the template made by the test above");
    const created = (d: string) =>
      (JSON.parse(readFileSync(join(d, "meta.json"), "utf8")) as { created: string }).created;
    const before = created(dir);
    process.env.MOAT_VM_TEMPLATE_MAX_AGE = "0";
    try {
      const sb = await sandbox();
      assert.equal(sb.bootedFrom, "template", sb.templateError);
      await sb.destroy();
    } finally {
      delete process.env.MOAT_VM_TEMPLATE_MAX_AGE;
    }
    const now = ourTemplates();
    assert.equal(now.length, 1, "the old template was replaced, not kept beside the new one");
    assert.ok(created(now[0]!) > before, `made again: ${created(now[0]!)} after ${before}`);
  });

  it("drops a template QEMU cannot load and boots the sandbox instead", async () => {
    const [dir] = ourTemplates();
    assert.ok(dir, "the template made by the test above");
    writeFileSync(join(dir, "state"), Buffer.alloc(4096, 0x5a));
    const sb = await sandbox();
    assert.equal(sb.bootedFrom, "boot");
    assert.match(sb.templateError ?? "", /QEMU|restor|migrat/i, sb.templateError);
    assert.equal(existsSync(dir), false, "the broken template is gone");
    assert.equal((await run(sb, "uname -r")).trim(), kernelRelease);
    await sb.destroy();
  });
});
