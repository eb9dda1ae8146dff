// 2. Syscall round trip: a getpid loop natively, under the C PTRACE_SYSEMU floor (the best
// the ptrace platform can do), and under moat's userkernel. Each program times its own loop
// and prints µs per call, so process start-up is not counted.
import { execFile } from "node:child_process";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { measurement, result } from "../lib/stats.js";
import { compileFloor, moatProblem } from "../lib/subjects.js";
import type { BenchContext, Scenario } from "../lib/types.js";

const exec = promisify(execFile);

async function repeat(ctx: BenchContext, once: () => Promise<string>): Promise<number[]> {
  await once(); // warm-up: page cache, JIT
  const samples: number[] = [];
  for (let i = 0; i < ctx.repeats; i++) {
    const v = Number((await once()).trim());
    if (!Number.isFinite(v)) throw new Error("the loop printed no figure");
    samples.push(v);
  }
  return samples;
}

export const syscall: Scenario = {
  id: "syscall",
  title: "Syscall round trip (getpid loop)",
  async run(ctx) {
    const n = ctx.quick ? 5_000 : 100_000;
    const loop = await compileFloor(ctx, "getpid_timed.c", ["-static", "-O1"]);
    const floor = await compileFloor(ctx, "ptrace_getpid.c");
    const native = measurement(
      "native",
      await repeat(ctx, async () => (await exec(loop, [String(n)])).stdout),
    );
    const cfloor = measurement(
      "ptrace floor (C)",
      await repeat(ctx, async () => (await exec(floor, [String(n)])).stdout),
    );
    const measurements = [native, cfloor];
    const missing: Record<string, string> = {};
    const notes: string[] = [`${n} getpid calls per run; each program times its own loop (µs per call).`];
    const problem = await moatProblem("userkernel");
    if (problem) missing["moat userkernel"] = problem;
    else {
      const { runStatic } = await import("../../src/userkernel/kernel/run.js");
      const user = measurement(
        "moat userkernel",
        await repeat(ctx, async () => {
          let out = "";
          const stdout = new Writable({
            write: (c, _e, cb) => {
              out += c.toString();
              cb();
            },
          });
          const sink = new Writable({ write: (_c, _e, cb) => cb() });
          const r = await runStatic({
            binary: loop,
            argv: [loop, String(n)],
            env: [],
            stdout,
            stderr: sink,
            log: () => {},
          });
          if (r.code !== 0) throw new Error(`userkernel getpid loop ended with ${JSON.stringify(r)}`);
          return out;
        }),
      );
      measurements.push(user);
      notes.push(
        `moat userkernel / ptrace floor = ${(user.median / cfloor.median).toFixed(2)}× (goal: 1.2×).`,
      );
    }
    missing["moat vm"] = "not measured yet: needs a way to run the loop binary in the guest from the bench";
    return result({
      id: this.id,
      title: this.title,
      unit: "µs/call",
      baseline: "native",
      measurements,
      missing,
      notes,
    });
  },
};
