// Whole-command timing through hyperfine (Debian's package), read back from its JSON export.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { probeCommand } from "./probe.js";
import { measurement } from "./stats.js";
import type { BenchContext, Measurement } from "./types.js";

const exec = promisify(execFile);

export interface Command {
  subject: string;
  argv: string[];
  /** Run before each timing run (hyperfine --prepare), e.g. to delete leftover state. */
  prepare?: string;
}

/** Times each command; returns milliseconds. Commands run without a shell (-N). */
export async function timeCommands(ctx: BenchContext, commands: Command[]): Promise<Measurement[]> {
  const out: Measurement[] = [];
  for (const [i, c] of commands.entries()) {
    const json = path.join(ctx.work, `hyperfine-${i}.json`);
    const args = ["-N", "--style", "none", "--runs", String(Math.max(ctx.repeats, 1)), "--export-json", json];
    if (!ctx.quick) args.push("--warmup", "1");
    if (c.prepare) args.push("--prepare", c.prepare);
    args.push(c.argv.map(shellQuote).join(" "));
    ctx.log(`  ${c.subject}: ${c.argv.join(" ")}`);
    await exec("hyperfine", args, { maxBuffer: 1 << 24 }).catch(async (e: Error) => {
      // hyperfine hides the command's output: run it once more to say why it failed.
      const why = await probeCommand(c.argv);
      throw new Error(
        `${c.subject} failed under hyperfine (${why ? `a rerun says: ${why}` : "a rerun succeeded, so it fails intermittently"}): ${e.message.split("\n")[0]}`,
      );
    });
    const data = JSON.parse(await readFile(json, "utf8")) as {
      results: Array<{ times: number[]; exit_codes: number[] }>;
    };
    const r = data.results[0]!;
    if (r.exit_codes.some((x) => x !== 0))
      throw new Error(`${c.subject} exited with ${r.exit_codes.join(",")}`);
    out.push(
      measurement(
        c.subject,
        r.times.map((t) => t * 1000),
      ),
    );
  }
  return out;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}
