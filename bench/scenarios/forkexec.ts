// 4. Process creation: a busybox sh loop running /bin/true 200 times, minus the same
// subject's `true`, reported per fork+exec+wait.
import { netTimes, type Pair } from "../lib/net.js";
import { probeCommand } from "../lib/probe.js";
import { result } from "../lib/stats.js";
import { bundle, moatProblem, moatRunArgv, ociRunArgv, ociRuntimeProblem } from "../lib/subjects.js";
import type { Scenario } from "../lib/types.js";

const N = 200;
const loop = (tru: string) => `i=0; while [ $i -lt ${N} ]; do ${tru}; i=$((i+1)); done`;

export const forkExec: Scenario = {
  id: "forkexec",
  title: `Process creation: fork+exec+wait of /bin/true, ${N} times`,
  async run(ctx) {
    const pairs: Pair[] = [
      {
        subject: "native",
        base: ["/bin/busybox", "true"],
        work: ["/bin/busybox", "sh", "-c", loop("/bin/busybox true")],
      },
    ];
    const missing: Record<string, string> = {};
    const runcProblem = await ociRuntimeProblem(ctx, "runc");
    if (runcProblem) missing.runc = runcProblem;
    else {
      const t = await bundle(ctx, ["true"]);
      const l = await bundle(ctx, ["sh", "-c", loop("/bin/true")]);
      pairs.push({
        subject: "runc",
        base: ociRunArgv(ctx, "runc", t, "bench-forkexec-true"),
        work: ociRunArgv(ctx, "runc", l, "bench-forkexec"),
      });
    }
    missing.crun = (await ociRuntimeProblem(ctx, "crun")) ?? "not measured in this scenario";
    const ukProblem = await moatProblem("userkernel");
    if (ukProblem) missing["moat userkernel"] = ukProblem;
    else {
      const work = moatRunArgv(ctx, "userkernel", ["sh", "-c", loop("/bin/true")]);
      const fails = await probeCommand(work);
      if (fails)
        missing["moat userkernel"] = `the userkernel cannot fork yet (sh running /bin/true fails: ${fails})`;
      else pairs.push({ subject: "moat userkernel", base: moatRunArgv(ctx, "userkernel", ["true"]), work });
    }
    const vmProblem = await moatProblem("vm");
    if (vmProblem) missing["moat vm"] = vmProblem;
    else if (ctx.quick) missing["moat vm"] = "quick mode: each VM run takes seconds under TCG";
    else
      pairs.push({
        subject: "moat vm",
        base: moatRunArgv(ctx, "vm", ["true"]),
        work: moatRunArgv(ctx, "vm", ["sh", "-c", loop("/bin/true")]),
      });
    const { measurements, notes } = await netTimes(ctx, pairs, 1000 / N);
    return result({
      id: this.id,
      title: this.title,
      unit: "µs/process",
      baseline: "native",
      measurements,
      missing,
      notes: [
        `busybox sh runs \`${loop("/bin/true")}\` (native: /bin/busybox true, the same static binary the image's /bin/true links to).`,
        `Figures: (whole command - median of \`true\` for the same subject) / ${N}, in µs per fork+exec+wait.`,
        ...notes,
      ],
    });
  },
};
