// The host's mount table as moat needs it: the mounts a sandbox left under a directory,
// found in /proc/self/mounts, so that a cleanup can detach them even after the process that
// made them was killed.
import * as fs from "node:fs";
import { MNT_DETACH, umount } from "./fs.js";

/** Mount points at or below dir, deepest first. */
export function mountsUnder(dir: string): string[] {
  let table: string;
  try {
    table = fs.readFileSync("/proc/self/mounts", "utf8");
  } catch {
    return [];
  }
  return table
    .split("\n")
    .map((l) => (l.split(" ")[1] ?? "").replace(/\\040/g, " "))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Detach each mount point; ones already gone are fine. */
export function unmountAll(points: string[]): void {
  for (const m of points) {
    try {
      umount(m, MNT_DETACH);
    } catch {
      // gone already
    }
  }
}

/**
 * Detach every mount under `dir`, then remove it, but only if nothing is mounted there any
 * more: a bind that would not detach may be a volume, and a recursive removal would go on
 * into the host's data. Returns the mount points left (then nothing was removed).
 */
export async function unmountAndRemove(dir: string): Promise<string[]> {
  unmountAll(mountsUnder(dir));
  const left = mountsUnder(dir);
  if (left.length === 0) await fs.promises.rm(dir, { recursive: true, force: true });
  return left;
}
