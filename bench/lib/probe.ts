// Try a command once before timing it, so a subject that cannot do the work yet is named
// with the error it gives instead of aborting the scenario.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** Undefined when argv exits 0 within the timeout, else its last line of stderr. */
export async function probeCommand(argv: string[], timeoutMs = 120_000): Promise<string | undefined> {
  try {
    await exec(argv[0]!, argv.slice(1), { timeout: timeoutMs, maxBuffer: 1 << 24 });
    return undefined;
  } catch (e) {
    const err = e as { stderr?: string; message: string; killed?: boolean };
    if (err.killed) return `did not finish within ${timeoutMs / 1000} s`;
    const lines = (err.stderr || err.message).trim().split("\n");
    return lines[lines.length - 1]!.slice(0, 300);
  }
}
