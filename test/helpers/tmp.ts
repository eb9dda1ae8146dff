// Temp directories for tests, removed after the test file (mounts inside are detached first).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mountsUnder } from "../../src/sys/mounts.js";

const made: string[] = [];

export function tempDir(prefix = "moat-test-"): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

export { mountsUnder };

export function cleanupTempDirs(): void {
  for (const d of made.splice(0)) {
    for (const m of mountsUnder(d)) execFileSync("umount", ["-l", m]);
    rmSync(d, { recursive: true, force: true });
  }
}
