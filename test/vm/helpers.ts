// Shared by the vm tests: finding leftover QEMU processes, a bundle of the built-in image.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBundle } from "../../src/image/bundle.js";
import { DEFAULT_IMAGE, ensureDefaultImage } from "../../src/image/default-image.js";
import { ImageStore } from "../../src/image/store.js";
import type { Sandbox } from "../../src/sandbox/sandbox.js";
import type { ExitStatus } from "../../src/sandbox/types.js";
import type { Spec } from "../../src/spec/runtime.js";
import { mountsUnder } from "../../src/sys/mounts.js";
import { childrenOf, processesWhere } from "../helpers/procs.js";
import { Collector } from "../helpers/streams.js";

/** Pids of qemu-system processes whose command line mentions `needle`. */
export function qemuProcessesMentioning(needle: string): number[] {
  return processesWhere(
    (argv, cmdline) => Boolean(argv[0]?.includes("qemu-system")) && cmdline.includes(needle),
  );
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is dead for our purposes: its parent just has not reaped it yet.
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

export async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

/** Pids of passt processes started by this process (passt runs as nobody, named passt or passt.avx2). */
export function passtChildren(): number[] {
  return childrenOf(process.pid).filter((pid) => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      return /^Name:\s+passt/m.test(status) && !/^State:\s+Z/m.test(status);
    } catch {
      return false; // gone
    }
  });
}

/** A temp directory with an image store holding the built-in image, and a bundle of it. */
export async function defaultBundle(
  prefix: string,
): Promise<{ tmp: string; bundleDir: string; spec: Spec; rootfs: string }> {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const store = await ImageStore.open(join(tmp, "root"));
  await ensureDefaultImage(store);
  const bundleDir = join(tmp, "bundle");
  const b = await createBundle(store, DEFAULT_IMAGE, bundleDir);
  return { tmp, bundleDir, spec: b.spec, rootfs: b.rootfs };
}

/** One container of `bundle`'s rootfs running `args` in `sb`, its output collected. */
export async function startIn(
  sb: Sandbox,
  bundle: { bundleDir: string; spec: Spec; rootfs: string },
  id: string,
  args: string[],
): Promise<{ id: string; stdout: Collector; stderr: Collector; done: Promise<ExitStatus> }> {
  const stdout = new Collector();
  const stderr = new Collector();
  await sb.create({
    id,
    bundle: bundle.bundleDir,
    spec: { ...bundle.spec, process: { ...bundle.spec.process!, args } },
    rootfs: bundle.rootfs,
    stdio: { stdout, stderr },
  });
  await sb.start(id);
  return { id, stdout, stderr, done: sb.wait(id) };
}

/** A shell script in a new container of `bundle`; asserts it succeeds and returns its stdout. */
export async function shellIn(
  sb: Sandbox,
  bundle: { bundleDir: string; spec: Spec; rootfs: string },
  id: string,
  script: string,
): Promise<string> {
  const r = await startIn(sb, bundle, id, ["sh", "-c", script]);
  const st = await r.done;
  assert.equal(st.status, 0, `${script}: ${r.stderr.text()}`);
  return r.stdout.text();
}

/** Destroy a sandbox and check it left no QEMU (of `tmp`), no mount and no state dir. */
export async function destroyAndCheck(sb: Sandbox | undefined, tmp: string, stateDir: string): Promise<void> {
  await sb?.destroy();
  assert.deepEqual(qemuProcessesMentioning(tmp), [], "no QEMU outlives destroy()");
  assert.deepEqual(mountsUnder(stateDir), [], "no mount outlives destroy()");
  assert.equal(existsSync(stateDir), false, "destroy() removes the state dir, and all in it");
}
