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
