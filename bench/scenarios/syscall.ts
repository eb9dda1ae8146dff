// 2. Syscall round trip: a getpid loop, natively, under the C PTRACE_SYSEMU floor (the best
// the ptrace platform can do), and under moat's userkernel. Per-call cost = (run with N calls
// - run with none) / N, so start-up is not counted.
import { spawn } from "node:child_process";
import { Writable } from "node:stream";
import { measurement, result } from "../lib/stats.js";
import { compileFloor, moatProblem } from "../lib/subjects.js";
import type { BenchContext, Scenario } from "../lib/types.js";

function timeProcess(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(argv[0]!, argv.slice(1), { stdio: "ignore" });
    p.on("error", reject);
    p.on("close", (code) =>
      code === 0
        ? resolve(Number(process.hrtime.bigint() - t0) / 1000)
        : reject(new Error(`${argv[0]} exited ${code}`)),
    );
  });
}

async function perCall(ctx: BenchContext, n: number, run: (n: number) => Promise<number>): Promise<number[]> {
  await run(Math.min(n, 1000));
  const samples: number[] = [];
  for (let i = 0; i < ctx.repeats; i++) {
    const empty = await run(0);
    const full = await run(n);
    samples.push(Math.max(full - empty, 0) / n);
  }
  return samples;
}

export const syscall: Scenario = {
  id: "syscall",
  title: "Syscall round trip (getpid loop)",
  async run(ctx) {
    const n = ctx.quick ? 2_000 : 100_000;
    const loop = await compileFloor(ctx, "getpid_loop.c", ["-static", "-O1"]);
    const floor = await compileFloor(ctx, "ptrace_getpid.c");
    const measurements = [
      measurement("native", await perCall(ctx, n, (k) => timeProcess([loop, String(k)]))),
      measurement("ptrace floor (C)", await perCall(ctx, n, (k) => timeProcess([floor, String(k)]))),
    ];
    const missing: Record<string, string> = {};
    const notes: string[] = [`${n} getpid calls per run, µs per call.`];
    const problem = await moatProblem("userkernel");
    if (problem) missing["moat userkernel"] = problem;
    else {
      const { runStatic } = await import("../../src/userkernel/kernel/run.js");
      const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
      const user = measurement(
        "moat userkernel",
        await perCall(ctx, n, async (k) => {
          const t0 = process.hrtime.bigint();
          const r = await runStatic({
            binary: loop,
            argv: [loop, String(k)],
            env: [],
            stdout: sink(),
            stderr: sink(),
            log: () => {},
          });
          if (r.code !== 0) throw new Error(`userkernel getpid loop ended with ${JSON.stringify(r)}`);
          return Number(process.hrtime.bigint() - t0) / 1000;
        }),
      );
      measurements.push(user);
      notes.push(
        `moat userkernel / ptrace floor = ${(user.median / measurements[1]!.median).toFixed(2)}× (goal: 1.2×).`,
      );
    }
    missing["moat vm"] = "the vm getpid loop needs the vm isolation wired into sandboxes";
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
