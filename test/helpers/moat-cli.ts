// moat's CLI as the tests run it: this checkout's entry point under node, one state root per
// test group, and an after() hook that removes every container a failed assertion left, so
// no monitor, VM or mount outlives the test file.
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { after } from "node:test";

export const MAIN = new URL("../../src/cli/main.js", import.meta.url).pathname;

export type Moat = (
  args: string[],
  opts?: { input?: string; env?: NodeJS.ProcessEnv },
) => SpawnSyncReturns<string>;

const roots: string[] = [];
// A file-level hook (this module is imported at the top of a test file): it runs once every
// test group of the file is done, for every root its groups used.
after(removeLeftovers);

/** `moat --root ROOT ARGS...`, synchronously, with stdin from `input` (default: none). */
export function cli(root: string, timeoutMs: number): Moat {
  roots.push(root);
  return (args, opts = {}) =>
    spawnSync(process.execPath, [MAIN, "--root", root, ...args], {
      encoding: "utf8",
      input: opts.input ?? "",
      env: opts.env ?? process.env,
      timeout: timeoutMs,
    });
}

function removeLeftovers(): void {
  for (const root of roots) {
    const ids = spawnSync(process.execPath, [MAIN, "--root", root, "ps", "-aq"], { encoding: "utf8" });
    for (const id of ids.stdout.split("\n").filter(Boolean)) {
      spawnSync(process.execPath, [MAIN, "--root", root, "rm", "-f", id]);
    }
  }
}
