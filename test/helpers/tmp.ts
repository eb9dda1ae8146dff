// Temp directories for tests, removed after the test file (mounts inside are detached first).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const made: string[] = [];

export function tempDir(prefix = "moat-test-"): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

/** Mount points at or below dir, deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

export function cleanupTempDirs(): void {
  for (const d of made.splice(0)) {
    for (const m of mountsUnder(d)) execFileSync("umount", ["-l", m]);
    rmSync(d, { recursive: true, force: true });
  }
}
