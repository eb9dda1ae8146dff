// The shapes every scenario and report share.

export interface Measurement {
  /** What ran: "native", "runc", "moat userkernel", ... */
  subject: string;
  samples: number[];
  min: number;
  median: number;
}

export interface ScenarioResult {
  id: string;
  title: string;
  /** Unit of the samples ("ms", "µs/call", "MiB"). */
  unit: string;
  /** The subject every ratio is taken against, measured in the same run. */
  baseline: string;
  measurements: Measurement[];
  /** median(subject) / median(baseline), per subject. */
  ratios: Record<string, number>;
  /** Subjects that could not run here, with the reason. */
  missing: Record<string, string>;
  notes: string[];
}

export interface Skipped {
  id: string;
  title: string;
  skipped: string;
}

export interface BenchContext {
  quick: boolean;
  /** Private scratch directory for this run (removed afterwards). */
  work: string;
  /** moat's store root for this run. */
  root: string;
  /** Repetitions per measurement (1 in quick mode). */
  repeats: number;
  log(message: string): void;
}

export interface Scenario {
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<ScenarioResult | Skipped>;
}

export function isSkipped(r: ScenarioResult | Skipped): r is Skipped {
  return "skipped" in r;
}
