// 2. Syscall round trip: a getpid loop natively, under the C PTRACE_SYSEMU floor (the best
// the ptrace platform can do), under moat's userkernel and in moat's vm guest. Each program
// times its own loop and prints µs per call, so process and sandbox start-up are not counted.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { availability } from "../../src/isolation/index.js";
import { busyboxPlus } from "../lib/images.js";
import { figures, hostTscKhz, passCount, timedPasses } from "../lib/passes.js";
import { measurement, result } from "../lib/stats.js";
import { compileFloor, moatProblem, moatRunArgv } from "../lib/subjects.js";
import type { BenchContext, Scenario } from "../lib/types.js";

const exec = promisify(execFile);

/** moat userkernel / ptrace floor in the README's run of 2026-11-29: the one-process kernel's figure. */
const BEFORE_ISSUE_11 = 1.79;

async function repeat(ctx: BenchContext, once: () => Promise<string>): Promise<number[]> {
  await once(); // warm-up: page cache, JIT
  const samples: number[] = [];
  for (let i = 0; i < ctx.repeats; i++) {
    const v = Number((await once()).trim().split(/\s+/)[0]);
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
    const notes: string[] = [
      `native, ptrace floor and moat userkernel: ${n} getpid calls per run; each program times its own loop (µs per call).`,
    ];
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
        `moat userkernel / ptrace floor = ${(user.median / cfloor.median).toFixed(2)}× (goal: 1.2×; ${BEFORE_ISSUE_11}× on 2026-11-29, before issue 11's multi-process kernel, which must not make it worse).`,
      );
    }
    const vmAvail = await availability("vm");
    if (!vmAvail.available) missing["moat vm"] = vmAvail.reason;
    else if (ctx.quick) missing["moat vm"] = "quick mode: a VM boot takes seconds under TCG";
    else {
      // The same static binary, in an image: all passes run in one boot, one process, timed
      // by the TSC (see passes.ts): the guest's own clock is not to be trusted under TCG.
      const khz = await hostTscKhz(ctx);
      const image = await busyboxPlus(ctx, "moat.local/bench-syscall:latest", [
        { name: "getpid_timed", mode: 0o755, content: await readFile(loop) },
      ]);
      const argv = moatRunArgv(ctx, "vm", ["/getpid_timed", String(n), String(passCount(ctx))], image);
      ctx.log(`  moat vm: ${argv.slice(2).join(" ")}`);
      try {
        const p = await timedPasses(ctx, argv);
        const vm = measurement(
          "moat vm",
          figures(p.rows, 1).map((ticks) => (ticks * 1000) / (khz * n)),
        );
        measurements.push(vm);
        const guest = measurement("guest clock", figures(p.rows));
        notes.push(
          `moat vm: ${passCount(ctx)} passes in one guest process and one boot (the first a warm-up, dropped), each timed by the TSC ticks it took at the host's rate (${(khz / 1000).toFixed(0)} MHz, measured in the run). Accelerator: ${vmAvail.reason}.`,
          `moat vm by the guest kernel's clock: median ${guest.median.toFixed(3)} µs/call, ${(guest.median / vm.median).toFixed(2)}× the TSC figure${vmAvail.hardware ? "" : " (under TCG the guest kernel marks its TSC unstable and keeps time with jiffies, which fall behind when the host is loaded)"}.`,
          vmAvail.hardware
            ? "Under KVM a guest getpid enters and leaves the guest kernel on the CPU itself, without a VM exit."
            : "Under TCG the guest's syscall entry, kernel path and return are emulated instructions, while native pays the host's syscall path with this nested host's mitigations: the figure says what a guest syscall costs without hardware virtualisation, not what it costs under KVM.",
        );
      } catch (e) {
        missing["moat vm"] = `the loop failed in the guest: ${(e as Error).message}`;
      }
    }
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
