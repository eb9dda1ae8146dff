// Summaries of repeated samples. Only min and median: means are dragged by the outliers a
// shared, nested machine produces, and no absolute figure is ever a pass/fail threshold.
import type { Measurement, ScenarioResult } from "./types.js";

export function measurement(subject: string, samples: number[]): Measurement {
  if (samples.length === 0) throw new Error(`no samples for ${subject}`);
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { subject, samples, min: sorted[0]!, median };
}

export function result(
  base: Omit<ScenarioResult, "ratios" | "measurements" | "missing" | "notes"> & {
    measurements: Measurement[];
    missing?: Record<string, string>;
    notes?: string[];
  },
): ScenarioResult {
  const b = base.measurements.find((m) => m.subject === base.baseline);
  if (!b) throw new Error(`baseline ${base.baseline} was not measured`);
  const ratios: Record<string, number> = {};
  for (const m of base.measurements) ratios[m.subject] = m.median / b.median;
  return { ...base, ratios, missing: base.missing ?? {}, notes: base.notes ?? [] };
}
