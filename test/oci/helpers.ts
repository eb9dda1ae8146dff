// Shared by the OCI runtime CLI tests: driving `moat` as runc callers do, a bundle of the
// built-in busybox image, and finding what a container left on the host.
import { execFileSync, type SpawnSyncReturns, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { createBundle } from "../../src/image/bundle.js";
import { DEFAULT_IMAGE, ensureDefaultImage } from "../../src/image/default-image.js";
import { ImageStore } from "../../src/image/store.js";
import type { Spec } from "../../src/spec/runtime.js";
import { tempDir } from "../helpers/tmp.js";

export const MAIN = new URL("../../src/cli/main.js", import.meta.url).pathname;

/** One copied rootfs for every test bundle (no mount to leak), and its image config. */
export async function baseBundle(): Promise<{ rootfs: string; spec: Spec }> {
  const store = await ImageStore.open(tempDir("moat-oci-store-"));
  await ensureDefaultImage(store);
  const b = await createBundle(store, DEFAULT_IMAGE, path.join(tempDir("moat-oci-base-"), "b"), {
    rootfsMode: "copy",
  });
  return { rootfs: b.rootfs, spec: b.spec };
}

/** A bundle directory whose config runs args in the shared rootfs. */
export function bundleFor(
  base: { rootfs: string; spec: Spec },
  args: string[],
  extra: Partial<Spec> = {},
): string {
  const dir = tempDir("moat-oci-bundle-");
  const spec: Spec = {
    ...base.spec,
    ...extra,
    root: { path: base.rootfs },
    process: { ...base.spec.process!, args, terminal: false },
  };
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(spec));
  return dir;
}

export function moat(root: string, args: string[], input = ""): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [MAIN, "--root", root, ...args], {
    encoding: "utf8",
    input,
    timeout: 120_000,
  });
}

/** `moat create`, its stdio (the container's) going to files, as conmon hands runc files or pipes. */
export function createTo(
  root: string,
  args: string[],
  out: string,
): { status: number | null; stderr: string } {
  const o = fs.openSync(out, "a");
  const e = fs.openSync(`${out}.err`, "a");
  const r = spawnSync(process.execPath, [MAIN, "--root", root, ...args], {
    stdio: ["ignore", o, e],
    timeout: 120_000,
  });
  fs.closeSync(o);
  fs.closeSync(e);
  return { status: r.status, stderr: fs.readFileSync(`${out}.err`, "utf8") };
}

export function state(root: string, id: string): { status: string; pid: number; id: string; bundle: string } {
  const r = moat(root, ["state", id]);
  if (r.status !== 0) throw new Error(`state ${id} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export async function waitFor(cond: () => boolean, timeoutMs = 60_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function stat(pid: string): string[] | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/**
 * Live host processes that belong to a state root: whose command line names it (monitors),
 * or whose session is one of theirs or one of `sessions` (stub, gofer, qemu).
 */
export function leftovers(root: string, sessions: number[] = []): number[] {
  const pids = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  const found = new Set<number>();
  const sids = new Set(sessions);
  for (const p of pids) {
    let cmd = "";
    try {
      cmd = fs.readFileSync(`/proc/${p}/cmdline`, "latin1");
    } catch {
      continue;
    }
    const f = stat(p);
    if (cmd.includes(root) && f && f[0] !== "Z" && Number(p) !== process.pid) {
      found.add(Number(p));
      sids.add(Number(p));
    }
  }
  for (const p of pids) {
    const f = stat(p);
    if (f && f[0] !== "Z" && sids.has(Number(f[3]))) found.add(Number(p));
  }
  return [...found];
}

export { mountsUnder } from "../../src/sys/mounts.js";

export { killAll } from "../helpers/procs.js";

/**
 * A stdin for a create invocation that stays open after that invocation exits (Node closes a
 * child's stdin pipe when the child exits): a FIFO opened read-write, written through a second fd.
 */
export function fifoStdin(): { fd: number; write(text: string): void; close(): void } {
  const p = path.join(tempDir("moat-oci-fifo-"), "stdin");
  execFileSync("mkfifo", [p]);
  const fd = fs.openSync(p, "r+");
  const w = fs.openSync(p, "w");
  return {
    fd,
    write: (text) => fs.writeSync(w, text),
    close: () => {
      fs.closeSync(fd);
      fs.closeSync(w);
    },
  };
}
