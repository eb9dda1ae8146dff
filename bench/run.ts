// npm run bench [-- --quick] [--only id,id] [--out DIR]
// Runs every scenario this host and the built backends support, names the ones it skips
// and why, and writes bench/results/<date>-<host>.{json,md,svg} (a partial run: with
// -only-<ids>). A full run (not --quick) rewrites the table in the README; a partial one
// replaces only its own scenarios' sections there.
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
import { futexWake, pipePingPong } from "./scenarios/ipc.js";
import { memory } from "./scenarios/memory.js";
import { python } from "./scenarios/python.js";
import { shim } from "./scenarios/shim.js";
import { startup } from "./scenarios/startup.js";
import { syscall } from "./scenarios/syscall.js";
import { vmboot } from "./scenarios/vmboot.js";

export const SCENARIOS: Scenario[] = [
  startup,
  syscall,
  fileRead,
  forkExec,
  python,
  pipePingPong,
  futexWake,
  memory,
  density,
  vmboot,
  shim,
];

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
    command: benchCommand(opts),
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
  // A partial run gets files of its own: it must not overwrite the day's full run.
  const suffix = `${opts.quick ? "-quick" : ""}${opts.only ? `-only-${opts.only.join("-")}` : ""}`;
  await writeResults(path.join(opts.out, `${run.date}-${run.host}${suffix}`), run);
  return run;
}

function benchCommand(opts: { quick: boolean; only?: string[] }): string {
  const flags = [...(opts.quick ? ["--quick"] : []), ...(opts.only ? ["--only", opts.only.join(",")] : [])];
  return `npm run bench${flags.length ? ` -- ${flags.join(" ")}` : ""}`;
}

async function writeResults(base: string, run: BenchRun): Promise<void> {
  await writeFile(`${base}.json`, `${JSON.stringify(run, null, 2)}\n`);
  await writeFile(`${base}.md`, markdown(run));
  await writeFile(`${base}.svg`, svg(run));
}

const README = path.join(REPO, "README.md");
const START = "<!-- bench:start -->";
const END = "<!-- bench:end -->";

async function updateReadme(run: BenchRun, svgPath: string): Promise<void> {
  const text = await readFile(README, "utf8");
  const i = text.indexOf(START);
  const j = text.indexOf(END);
  if (i < 0 || j < i) return;
  const body = `${START}\n${markdown(run)}\n![ratios](${path.relative(REPO, svgPath)})\n${END}`;
  await writeFile(README, text.slice(0, i) + body + text.slice(j + END.length));
}

/**
 * A partial run updates only its own sections of the README: the run the README shows (found
 * through its chart's file name) gets this run's scenarios in place of its own, and is
 * written as `<date>-<host>-merged.*`. A scenario this run skipped keeps the older figures.
 */
async function mergeIntoReadme(run: BenchRun, out: string): Promise<void> {
  const text = await readFile(README, "utf8");
  const shown = /!\[ratios\]\((bench\/results\/[^)]+)\.svg\)/.exec(
    text.slice(text.indexOf(START), text.indexOf(END)),
  );
  if (!shown) return;
  const prev = JSON.parse(await readFile(path.join(REPO, `${shown[1]}.json`), "utf8")) as BenchRun;
  const fresh = run.scenarios.filter((s) => !isSkipped(s));
  if (fresh.length === 0) return;
  const byId = new Map(prev.scenarios.map((s) => [s.id, s]));
  for (const s of fresh) byId.set(s.id, s);
  const ids = new Set(fresh.map((s) => s.id));
  const merged: BenchRun = {
    ...prev,
    scenarios: SCENARIOS.map((s) => byId.get(s.id)).filter((s) => s !== undefined),
    updates: [
      // An older update whose scenarios are all measured again is no longer shown.
      ...(prev.updates ?? []).filter((u) => u.scenarios.some((id) => !ids.has(id))),
      { date: run.date, command: run.command, scenarios: [...ids] },
    ],
  };
  const base = path.join(out, `${run.date}-${run.host}-merged`);
  await writeResults(base, merged);
  await updateReadme(merged, `${base}.svg`);
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
  if (!values.quick) {
    if (values.only) await mergeIntoReadme(run, out);
    else await updateReadme(run, path.join(out, `${run.date}-${run.host}.svg`));
  }
}
