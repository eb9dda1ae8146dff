// Shared by the vm tests: finding leftover QEMU processes, a bundle of the built-in image.

import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBundle } from "../../src/image/bundle.js";
import { DEFAULT_IMAGE, ensureDefaultImage } from "../../src/image/default-image.js";
import { ImageStore } from "../../src/image/store.js";
import type { Spec } from "../../src/spec/runtime.js";
import { processesWhere } from "../helpers/procs.js";

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
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, "utf8");
      const name = /^Name:\s+(\S+)/m.exec(status)?.[1] ?? "";
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
      if (name.startsWith("passt") && ppid === process.pid && !/^State:\s+Z/m.test(status))
        found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
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
