// npm run bench [-- --quick] [--only id,id] [--out DIR]
// Runs every scenario this host and the built backends support, names the ones it skips
// and why, and writes bench/results/<date>-<host>.{json,md,svg}. A full run (not --quick)
// also updates the table in the README.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type BenchRun, markdown, svg } from "./lib/report.js";
import { type BenchContext, isSkipped, type Scenario } from "./lib/types.js";
import { density } from "./scenarios/density.js";
import { fileRead } from "./scenarios/fileread.js";
import { forkExec } from "./scenarios/forkexec.js";
import { memory } from "./scenarios/memory.js";
import { python } from "./scenarios/python.js";
import { startup } from "./scenarios/startup.js";
import { syscall } from "./scenarios/syscall.js";
import { vmboot } from "./scenarios/vmboot.js";

export const SCENARIOS: Scenario[] = [startup, syscall, fileRead, forkExec, python, memory, density, vmboot];

const REPO = fileURLToPath(new URL("../../", import.meta.url));

export async function runBench(opts: {
  quick: boolean;
  only?: string[];
  out: string;
  log?: (m: string) => void;
}): Promise<BenchRun> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const work = await mkdtemp(path.join(os.tmpdir(), "moat-bench-"));
  const ctx: BenchContext = {
    quick: opts.quick,
    work,
    root: path.join(work, "root"),
    repeats: opts.quick ? 1 : 7,
    log,
  };
  const scenarios = SCENARIOS.filter((s) => !opts.only || opts.only.includes(s.id));
  const run: BenchRun = {
    date: new Date().toISOString().slice(0, 10),
    host: os.hostname(),
    machine: {
      cpus: os.cpus().length,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
      node: process.version,
    },
    quick: opts.quick,
    command: `npm run bench${opts.quick ? " -- --quick" : ""}`,
    scenarios: [],
  };
  try {
    for (const s of scenarios) {
      log(`${s.id}: ${s.title}`);
      try {
        run.scenarios.push(await s.run(ctx));
      } catch (e) {
        run.scenarios.push({ id: s.id, title: s.title, skipped: `failed: ${(e as Error).message}` });
      }
      const last = run.scenarios[run.scenarios.length - 1]!;
      log(
        isSkipped(last)
          ? `  skipped: ${last.skipped}`
          : `  ${Object.entries(last.ratios)
              .map(([k, v]) => `${k} ${v.toFixed(2)}×`)
              .join(", ")}`,
      );
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  await mkdir(opts.out, { recursive: true });
  const base = path.join(opts.out, `${run.date}-${run.host}${opts.quick ? "-quick" : ""}`);
  await writeFile(`${base}.json`, `${JSON.stringify(run, null, 2)}\n`);
  await writeFile(`${base}.md`, markdown(run));
  await writeFile(`${base}.svg`, svg(run));
  return run;
}

async function updateReadme(run: BenchRun, svgPath: string): Promise<void> {
  const readme = path.join(REPO, "README.md");
  const text = await readFile(readme, "utf8");
  const start = "<!-- bench:start -->";
  const end = "<!-- bench:end -->";
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) return;
  const body = `${start}\n${markdown(run)}\n![ratios](${path.relative(REPO, svgPath)})\n${end}`;
  await writeFile(readme, text.slice(0, i) + body + text.slice(j + end.length));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { values } = parseArgs({
    options: { quick: { type: "boolean" }, only: { type: "string" }, out: { type: "string" } },
  });
  const out = values.out ?? path.join(REPO, "bench", "results");
  const run = await runBench({
    quick: Boolean(values.quick),
    ...(values.only ? { only: values.only.split(",") } : {}),
    out,
  });
  process.stdout.write(markdown(run));
  if (!values.quick && !values.only) {
    await updateReadme(run, path.join(out, `${run.date}-${run.host}.svg`));
  }
}
