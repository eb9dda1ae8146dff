// 1. Start-up to exit of `true`: how long a whole sandbox lives when it does nothing.
import { type Command, timeCommands } from "../lib/hyperfine.js";
import { result } from "../lib/stats.js";
import { bundle, moatProblem, moatRunArgv, ociRunArgv, ociRuntimeProblem } from "../lib/subjects.js";
import type { Scenario } from "../lib/types.js";

export const startup: Scenario = {
  id: "startup",
  title: "Start-up to exit of `true`",
  async run(ctx) {
    const commands: Command[] = [{ subject: "native", argv: ["/bin/true"] }];
    const missing: Record<string, string> = {};
    const b = await bundle(ctx, ["true"]);
    for (const rt of ["runc", "crun"] as const) {
      const problem = await ociRuntimeProblem(ctx, rt);
      if (problem) missing[rt] = problem;
      else commands.push({ subject: rt, argv: ociRunArgv(ctx, rt, b, `bench-${rt}`) });
    }
    for (const iso of ["userkernel", "vm"] as const) {
      const problem = await moatProblem(iso);
      if (problem) missing[`moat ${iso}`] = problem;
      else {
        commands.push({ subject: `moat ${iso}`, argv: moatRunArgv(ctx, iso, ["true"]) });
        // hyperfine's warm-up run makes the template; the timed runs are clones. Not in
        // --quick mode, which has no warm-up run.
        if (iso === "vm" && !ctx.quick)
          commands.push({
            subject: "moat vm from a template",
            argv: ["env", "MOAT_VM_TEMPLATE=1", ...moatRunArgv(ctx, iso, ["true"])],
          });
      }
    }
    const baseline = commands.some((c) => c.subject === "runc") ? "runc" : "native";
    return result({
      id: this.id,
      title: this.title,
      unit: "ms",
      baseline,
      measurements: await timeCommands(ctx, commands),
      missing,
      notes: [
        "Whole-command wall time from hyperfine, including the CLI's own start (Node for moat).",
        "moat vm from a template: MOAT_VM_TEMPLATE=1 (off by default); hyperfine's warm-up run makes the template, so the timed runs resume clones of it.",
      ],
    });
  },
};
