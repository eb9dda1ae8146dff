// 10. Between two tasks: a pipe ping-pong between two processes (bench/floors/pipe_pingpong.c)
// and a futex hand-over between two threads (futex_pingpong.c), natively and under moat's
// userkernel. Each static program times its own loop and prints µs per round trip, so start-up
// is not counted. A kernel that cannot run one (no fork, no threads yet) gets "not run" with
// what the program said.
import { execFile } from "node:child_process";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { measurement, result } from "../lib/stats.js";
import { compileFloor, moatProblem } from "../lib/subjects.js";
import type { BenchContext, Measurement, Scenario, ScenarioResult } from "../lib/types.js";

const exec = promisify(execFile);

interface Program {
  source: string;
  flags: string[];
  what: string;
}

const PIPE: Program = { source: "pipe_pingpong.c", flags: ["-static", "-O2"], what: "pipe ping-pong" };
const FUTEX: Program = {
  source: "futex_pingpong.c",
  flags: ["-static", "-O2", "-pthread"],
  what: "futex wake",
};

function figure(out: string): number {
  const v = Number(out.trim().split(/\s+/)[0]);
  if (!Number.isFinite(v)) throw new Error(`the loop printed no figure: ${JSON.stringify(out)}`);
  return v;
}

async function samples(ctx: BenchContext, once: () => Promise<string>): Promise<number[]> {
  await once(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < ctx.repeats; i++) out.push(figure(await once()));
  return out;
}

/** One run under the userkernel: its stdout, or throws with how it ended and what it lacked. */
async function underUserkernel(bin: string, n: number): Promise<string> {
  const { runStatic } = await import("../../src/userkernel/kernel/run.js");
  let out = "";
  let err = "";
  const sink = (f: (s: string) => void) =>
    new Writable({
      write: (c, _e, cb) => {
        f(c.toString());
        cb();
      },
    });
  const r = await runStatic({
    binary: bin,
    argv: [bin, String(n)],
    env: [],
    stdout: sink((s) => {
      out += s;
    }),
    stderr: sink((s) => {
      err += s;
    }),
    log: () => {},
    signal: AbortSignal.timeout(300_000),
  });
  if (r.code !== 0) {
    const missing = [...r.unimplemented].map(([k, v]) => `${k} x${v}`).join(", ");
    throw new Error(
      `${r.signal ? `killed by ${r.signal}` : `exit ${r.code}`}: ${err.trim() || "no message"}${missing ? ` (unimplemented: ${missing})` : ""}`,
    );
  }
  return out;
}

async function one(ctx: BenchContext, p: Program, n: number): Promise<ScenarioResult> {
  const bin = await compileFloor(ctx, p.source, p.flags);
  const measurements: Measurement[] = [
    measurement("native", await samples(ctx, async () => (await exec(bin, [String(n)])).stdout)),
  ];
  const missing: Record<string, string> = {};
  const problem = await moatProblem("userkernel");
  if (problem) missing["moat userkernel"] = problem;
  else {
    try {
      measurements.push(measurement("moat userkernel", await samples(ctx, () => underUserkernel(bin, n))));
    } catch (e) {
      missing["moat userkernel"] = `the ${p.what} fails under the userkernel: ${(e as Error).message}`;
    }
  }
  return result({
    id: "",
    title: "",
    unit: "µs/round trip",
    baseline: "native",
    measurements,
    missing,
    notes: [],
  });
}

export const pipePingPong: Scenario = {
  id: "pipe",
  title: "Pipe ping-pong between two processes",
  async run(ctx) {
    const n = ctx.quick ? 1_000 : 20_000;
    const r = await one(ctx, PIPE, n);
    return {
      ...r,
      id: this.id,
      title: this.title,
      notes: [
        `${n} round trips of one byte per run: the parent writes into one pipe, the forked child reads it and writes it back through another; the parent times its loop (bench/floors/pipe_pingpong.c, static).`,
      ],
    };
  },
};

export const futexWake: Scenario = {
  id: "futex",
  title: "Futex hand-over between two threads",
  async run(ctx) {
    const n = ctx.quick ? 1_000 : 20_000;
    const r = await one(ctx, FUTEX, n);
    return {
      ...r,
      id: this.id,
      title: this.title,
      notes: [
        `${n} round trips per run: two threads pass a turn back and forth through one word, each FUTEX_WAIT until it holds its turn and FUTEX_WAKE of the other after handing it over (bench/floors/futex_pingpong.c, static, -pthread); timed from inside.`,
        "On 2 cores the native threads may find the turn already handed over and skip the wait; under the userkernel every futex call is a trip through the tracer.",
      ],
    };
  },
};
