// The cost of the work a command does beyond starting its sandbox: each subject runs a
// base command (`true`) and the working one; the figure is working - median(base).
import { type Command, timeCommands } from "./hyperfine.js";
import { measurement } from "./stats.js";
import type { BenchContext, Measurement } from "./types.js";

/** Net costs under this are timer noise; they are shown as this floor so ratios stay finite. */
export const NET_FLOOR_MS = 0.01;

export interface Pair {
  subject: string;
  base: string[];
  work: string[];
}

export async function netTimes(
  ctx: BenchContext,
  pairs: Pair[],
  scale = 1,
): Promise<{ measurements: Measurement[]; notes: string[] }> {
  const measurements: Measurement[] = [];
  const notes: string[] = [];
  for (const p of pairs) {
    const cmds: Command[] = [
      { subject: `${p.subject} (base)`, argv: p.base },
      { subject: p.subject, argv: p.work },
    ];
    const [base, work] = await timeCommands(ctx, cmds);
    const net = work!.samples.map((s) => Math.max((s - base!.median) * scale, NET_FLOOR_MS));
    measurements.push(measurement(p.subject, net));
    notes.push(
      `${p.subject}: base ${base!.median.toFixed(1)} ms, whole command ${work!.median.toFixed(1)} ms (medians).`,
    );
  }
  return { measurements, notes };
}
