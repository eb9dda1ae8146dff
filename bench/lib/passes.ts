// Programs that time their own work inside the sandbox (bench/floors/*_timed.c) and print one
// line per pass. One invocation runs every pass, so a subject's start-up (a VM boot, the
// userkernel's gofer and stub) is paid once and never timed; the first pass is a warm-up.
//
// Each line also carries the TSC ticks of its pass. In a TCG guest those are the figure to
// trust: the guest kernel finds its TSC unstable there and keeps time with jiffies, which
// fall behind when the host is loaded, while QEMU derives the guest's TSC from the host's.
// Stamping the lines on the host is no substitute: the guest's output relay batches them.
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { compileFloor } from "./subjects.js";
import type { BenchContext } from "./types.js";

const exec = promisify(execFile);

/** Generous: a TCG guest runs its passes in about a minute on this machine. */
const TIMEOUT_MS = 15 * 60_000;

/** How many passes to ask for: the measured ones plus the warm-up. */
export function passCount(ctx: BenchContext): number {
  return ctx.repeats + 1;
}

export interface Passes {
  /** The fields of each measured pass's line (the warm-up dropped). */
  rows: string[][];
}

const tscRates = new Map<string, number>();

/** The host's TSC rate in kHz (bench/floors/tsc_khz.c), measured once per bench run. */
export async function hostTscKhz(ctx: BenchContext): Promise<number> {
  let khz = tscRates.get(ctx.work);
  if (khz === undefined) {
    const bin = await compileFloor(ctx, "tsc_khz.c");
    khz = Number((await exec(bin)).stdout.trim());
    if (!(khz > 1000)) throw new Error(`tsc_khz measured no plausible TSC rate (${khz} kHz)`);
    tscRates.set(ctx.work, khz);
  }
  return khz;
}

/**
 * Runs argv (a program asked for passCount(ctx) passes) and collects its lines of figures.
 * Throws with the program's last words when it fails or prints fewer lines than asked.
 */
export function timedPasses(ctx: BenchContext, argv: string[]): Promise<Passes> {
  const want = passCount(ctx);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    const lines: string[] = [];
    let partial = "";
    let stderr = "";
    let output = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (output.length < 4096) output += chunk;
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      // A sandbox may add carriage returns or other lines around the program's own output.
      for (const p of parts) {
        const text = p.trim();
        if (/^[0-9.]+( |$)/.test(text)) lines.push(text);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-4096);
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        const why =
          signal === "SIGKILL"
            ? `did not finish within ${TIMEOUT_MS / 60_000} min`
            : `exit ${code ?? signal}`;
        const last = stderr.trim().split("\n").pop() ?? "";
        return reject(new Error(`${why}${last ? `: ${last.slice(0, 300)}` : ""}`));
      }
      if (lines.length !== want)
        return reject(
          new Error(`expected ${want} lines of figures, got ${lines.length}: ${output.slice(0, 200)}`),
        );
      resolve({ rows: lines.slice(1).map((l) => l.split(/\s+/)) });
    });
  });
}

/** Field `i` (default the first) of each pass as a number. */
export function figures(rows: string[][], i = 0): number[] {
  return rows.map((r) => {
    const v = Number(r[i]);
    if (!Number.isFinite(v)) throw new Error(`not a figure: ${r.join(" ")}`);
    return v;
  });
}
