// scripts/python-tests.sh: the host's Debian python regression tests for os, posix, signal,
// threading, subprocess, fcntl, select and tempfile (libpython3.11-testsuite), run natively
// (chroot into the python rootfs) and under the userkernel (the Kernel API, the same rootfs),
// one module per run, each under a time limit; prints per module tests run, passed, failed,
// errors and skipped, and which tests fail on one side only.
// Usage: node dist/test/userkernel/python-tests-main.js [--native-only|--userkernel-only]
//        [--modules os,signal] [--timeout SECONDS] [--json FILE]
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { buildPythonRootfs, PYTHON, PYTHON_ENV, runNativeChroot } from "../helpers/python-image.js";
import { runIn } from "./rootfs-run.js";

const MODULES = ["os", "posix", "signal", "threading", "subprocess", "fcntl", "select", "tempfile"];
const RUNNER = fileURLToPath(new URL("../../../test/userkernel/py/regrtest_counts.py", import.meta.url));

interface Counts {
  module: string;
  run?: number;
  passed?: number;
  failed?: number;
  errors?: number;
  skipped?: number;
  seconds?: number;
  failing?: string[];
  import_error?: string;
  /** Set when there was no JSON line: how the run ended instead. */
  problem?: string;
}

function parse(module: string, stdout: string, how: string): Counts {
  const line = stdout
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  if (line) return JSON.parse(line) as Counts;
  const tail = stdout.trim().split("\n").slice(-3).join(" | ");
  return { module, problem: `${how}${tail ? `; last output: ${tail.slice(0, 300)}` : ""}` };
}

function cell(c: Counts): string {
  if (c.problem) return `no result (${c.problem})`;
  if (c.import_error) return `import failed: ${c.import_error}`;
  return `${c.run} run, ${c.passed} passed, ${c.failed} failed, ${c.errors} errors, ${c.skipped} skipped (${c.seconds} s)`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "native-only": { type: "boolean" },
      "userkernel-only": { type: "boolean" },
      modules: { type: "string" },
      timeout: { type: "string" },
      json: { type: "string" },
    },
  });
  const modules = values.modules ? values.modules.split(",") : MODULES;
  const timeoutMs = Number(values.timeout ?? 900) * 1000;
  const fs = await buildPythonRootfs({ withTests: true });
  const results: { module: string; native?: Counts; userkernel?: Counts }[] = [];
  try {
    mkdirSync(path.join(fs.rootfs, "t"), { recursive: true });
    copyFileSync(RUNNER, path.join(fs.rootfs, "t", "regrtest_counts.py"));
    const argv = (m: string) => [PYTHON, "/t/regrtest_counts.py", m];
    for (const m of modules) {
      const row: (typeof results)[number] = { module: m };
      if (!values["userkernel-only"]) {
        const o = await runNativeChroot(fs.rootfs, argv(m), { timeoutMs, cwd: "/tmp" });
        row.native = parse(
          m,
          o.stdout,
          o.signal
            ? `killed by ${o.signal} (time limit ${timeoutMs / 1000} s?)`
            : `exit ${o.code}: ${o.stderr.trim().split("\n").slice(-1)[0] ?? ""}`,
        );
        process.stderr.write(`${m} native: ${cell(row.native)}\n`);
      }
      if (!values["native-only"]) {
        try {
          const o = await runIn(fs.rootfs, argv(m), {
            env: PYTHON_ENV,
            cwd: "/tmp",
            signal: AbortSignal.timeout(timeoutMs),
          });
          row.userkernel = parse(
            m,
            o.stdout,
            `${o.signal ? `signal ${o.signal}` : `exit ${o.code}`}: ${o.stderr.trim().split("\n").slice(-1)[0] ?? ""}`,
          );
        } catch (e) {
          row.userkernel = { module: m, problem: (e as Error).message.split("\n")[0]! };
        }
        process.stderr.write(`${m} userkernel: ${cell(row.userkernel)}\n`);
      }
      results.push(row);
    }
  } finally {
    await fs.remove();
  }
  const lines = ["| module | native | userkernel |", "|---|---|---|"];
  for (const r of results)
    lines.push(
      `| ${r.module} | ${r.native ? cell(r.native) : "–"} | ${r.userkernel ? cell(r.userkernel) : "–"} |`,
    );
  for (const r of results) {
    if (!r.native?.failing || !r.userkernel?.failing) continue;
    const onlyUser = r.userkernel.failing.filter((t) => !r.native!.failing!.includes(t));
    const onlyNative = r.native.failing.filter((t) => !r.userkernel!.failing!.includes(t));
    if (onlyUser.length)
      lines.push("", `${r.module}: failing under the userkernel only: ${onlyUser.join(", ")}`);
    if (onlyNative.length) lines.push("", `${r.module}: failing natively only: ${onlyNative.join(", ")}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
  if (values.json) writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
}

await main();
