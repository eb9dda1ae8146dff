// Results as JSON (the record), markdown (for the README) and an SVG chart of the ratios
// (readable in any browser). All three are written from the same results object.
import { isSkipped, type ScenarioResult, type Skipped } from "./types.js";

export interface BenchRun {
  date: string;
  host: string;
  machine: { cpus: number; memoryGiB: number; kernel: string; node: string };
  quick: boolean;
  command: string;
  scenarios: Array<ScenarioResult | Skipped>;
  /** Later partial runs whose scenarios replaced this run's (the README's merged view). */
  updates?: Array<{ date: string; command: string; scenarios: string[] }>;
}

const fmt = (n: number) =>
  n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n >= 1 ? n.toFixed(2) : n.toPrecision(3);

export function markdown(run: BenchRun): string {
  const lines = [
    `Measured ${run.date} on ${run.machine.cpus} cores, ${run.machine.memoryGiB} GiB, Linux ${run.machine.kernel}, Node ${run.machine.node}${run.quick ? " (quick mode: one sample each, not comparable)" : ""}.`,
    `Regenerate: \`${run.command}\`. Ratios are medians against the baseline measured in the same run.`,
  ];
  if (run.updates?.length)
    lines.push(
      `Updated since by partial runs: ${run.updates.map((u) => `${u.scenarios.join(", ")} (\`${u.command}\`, ${u.date})`).join("; ")}. The other sections are from the run above.`,
    );
  lines.push("");
  for (const s of run.scenarios) {
    lines.push(`### ${s.title}`, "");
    if (isSkipped(s)) {
      lines.push(`Skipped: ${s.skipped}`, "");
      continue;
    }
    lines.push(
      `| subject | min (${s.unit}) | median (${s.unit}) | × ${s.baseline} |`,
      "|---|---:|---:|---:|",
    );
    for (const m of s.measurements) {
      lines.push(`| ${m.subject} | ${fmt(m.min)} | ${fmt(m.median)} | ${fmt(s.ratios[m.subject]!)} |`);
    }
    for (const [subject, why] of Object.entries(s.missing))
      lines.push(`| ${subject} | – | – | not run: ${why} |`);
    lines.push("");
    for (const n of s.notes) lines.push(`- ${n}`);
    if (s.notes.length) lines.push("");
    lines.push(`Regenerate: \`npm run bench -- --only ${s.id}\``, "");
  }
  return lines.join("\n");
}

/** A horizontal bar per (scenario, subject), log-scaled ratio against the scenario's baseline. */
export function svg(run: BenchRun): string {
  const rows: Array<{ label: string; ratio: number; baseline: boolean } | { header: string }> = [];
  for (const s of run.scenarios) {
    if (isSkipped(s)) continue;
    rows.push({ header: `${s.title} (× ${s.baseline})` });
    for (const m of s.measurements)
      rows.push({ label: m.subject, ratio: s.ratios[m.subject]!, baseline: m.subject === s.baseline });
  }
  const rowH = 22;
  const left = 190;
  const width = 760;
  const barMax = width - left - 90;
  const maxLog = Math.max(1, ...rows.map((r) => ("ratio" in r ? Math.log10(Math.max(r.ratio, 1)) : 0)));
  const minLog = Math.min(0, ...rows.map((r) => ("ratio" in r ? Math.log10(Math.min(r.ratio, 1)) : 0)));
  const span = maxLog - minLog || 1;
  const x0 = left + ((0 - minLog) / span) * barMax;
  const height = rows.length * rowH + 50;
  const esc = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">moat bench ${esc(run.date)}: ratio to baseline (log scale; 1 = baseline)</text>`,
    `<line x1="${x0}" y1="28" x2="${x0}" y2="${height - 10}" stroke="#888" stroke-dasharray="3,3"/>`,
  ];
  rows.forEach((r, i) => {
    const y = 40 + i * rowH;
    if ("header" in r) {
      out.push(`<text x="10" y="${y + 14}" font-weight="bold">${esc(r.header)}</text>`);
      return;
    }
    const x = left + ((Math.log10(r.ratio) - minLog) / span) * barMax;
    const [a, b] = x >= x0 ? [x0, x] : [x, x0];
    const color = r.baseline ? "#999" : r.ratio <= 1 ? "#2a9d8f" : "#e76f51";
    out.push(`<text x="20" y="${y + 14}">${esc(r.label)}</text>`);
    out.push(
      `<rect x="${a}" y="${y + 3}" width="${Math.max(b - a, 1)}" height="${rowH - 7}" fill="${color}"/>`,
    );
    out.push(`<text x="${b + 5}" y="${y + 14}">${fmt(r.ratio)}×</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
