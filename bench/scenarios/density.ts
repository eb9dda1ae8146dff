// 7. Density: idle sandboxes started one after another (up to a cap, or the first
// failure), all kept running; start time of each and PSS per sandbox as the count grows.
import { type IdleKind, type IdleSandbox, startIdle } from "../lib/idle.js";
import { pssMiB } from "../lib/pss.js";
import { measurement, result } from "../lib/stats.js";
import { bundle, moatProblem, ociRuntimeProblem } from "../lib/subjects.js";
import type { BenchContext, Measurement, Scenario } from "../lib/types.js";

/** Under TCG each boot takes seconds and 512 MiB of guest RAM: cap the vm to stay bounded. */
const VM_CAP = 5;

interface Curve {
  subject: string;
  starts: number[];
  /** PSS per sandbox (total / count) after each start, MiB. */
  perSandbox: number[];
  stoppedBy?: string;
}

async function fill(ctx: BenchContext, kind: IdleKind, cap: number, runcBundle?: string): Promise<Curve> {
  const subject = kind === "runc" ? "runc" : `moat ${kind}`;
  const curve: Curve = { subject, starts: [], perSandbox: [] };
  const live: IdleSandbox[] = [];
  const left: string[] = [];
  try {
    while (live.length < cap) {
      let sb: IdleSandbox;
      try {
        sb = await startIdle(ctx, kind, runcBundle);
      } catch (e) {
        curve.stoppedBy = (e as Error).message.split("\n")[0];
        break;
      }
      live.push(sb);
      curve.starts.push(sb.startMs);
      curve.perSandbox.push(pssMiB(live.flatMap((s) => s.pids())) / live.length);
    }
  } finally {
    for (const sb of live) left.push(...(await sb.stop()));
  }
  if (left.length) throw new Error(`${subject} left processes behind: ${left.join(", ")}`);
  return curve;
}

export const density: Scenario = {
  id: "density",
  title: "Density: idle sandboxes up to 20",
  async run(ctx) {
    const cap = ctx.quick ? 3 : 20;
    const missing: Record<string, string> = {};
    const kinds: Array<[IdleKind, number]> = [];
    const runcProblem = await ociRuntimeProblem(ctx, "runc");
    if (runcProblem) missing.runc = runcProblem;
    else kinds.push(["runc", cap]);
    for (const iso of ["userkernel", "vm"] as const) {
      const problem = await moatProblem(iso);
      if (problem) missing[`moat ${iso}`] = problem;
      else if (iso === "vm" && ctx.quick)
        missing["moat vm"] = "quick mode: a VM boot takes seconds under TCG";
      else kinds.push([iso, iso === "vm" ? Math.min(cap, VM_CAP) : cap]);
    }
    const runcBundle = kinds.some(([k]) => k === "runc") ? await bundle(ctx, ["sleep", "1000"]) : undefined;
    const curves: Curve[] = [];
    for (const [kind, n] of kinds) curves.push(await fill(ctx, kind, n, runcBundle));
    const measurements: Measurement[] = curves
      .filter((c) => c.starts.length > 0)
      .map((c) => measurement(c.subject, c.starts));
    const notes = [
      `Measurements: wall time to start each sandbox while the earlier ones keep running (up to ${cap}; moat vm capped at ${Math.min(cap, VM_CAP)} because each TCG boot takes seconds).`,
      "runc: `runc run -d` of `sleep 1000`. moat: a child Node process creating the sandbox through the TypeScript API (bundle, sandbox, container running `cat`).",
    ];
    for (const c of curves) {
      notes.push(
        `${c.subject}: ${c.starts.length} sandbox(es) started${c.stoppedBy ? `, then failed: ${c.stoppedBy}` : ""}.`,
      );
    }
    const counts = Math.max(0, ...curves.map((c) => c.starts.length));
    const fmt = (v: number | undefined, d: number) => (v === undefined ? "–" : v.toFixed(d));
    notes.push("Per count n: start time of the n-th sandbox / PSS per sandbox with n running:");
    for (let i = 0; i < counts; i++) {
      notes.push(
        `n=${i + 1}: ${curves
          .filter((c) => c.starts[i] !== undefined)
          .map((c) => `${c.subject} ${fmt(c.starts[i], 0)} ms / ${fmt(c.perSandbox[i], 1)} MiB`)
          .join("; ")}`,
      );
    }
    const baseline = measurements.some((m) => m.subject === "runc") ? "runc" : measurements[0]?.subject;
    if (!baseline || measurements.length < 2)
      return {
        id: this.id,
        title: this.title,
        skipped: `too few subjects could start: ${JSON.stringify(missing)}`,
      };
    return result({ id: this.id, title: this.title, unit: "ms", baseline, measurements, missing, notes });
  },
};
