// Mounts a sandbox left under a container's state directory, found in /proc/self/mounts so
// that `delete --force` can detach them even after the monitor that made them was killed.
import * as fs from "node:fs";
import { umount } from "../sys/fs.js";

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

export function unmountAll(points: string[]): void {
  for (const m of points) {
    try {
      umount(m, 2 /* MNT_DETACH */);
    } catch {
      // gone already
    }
  }
}
