// 5. `python3 -c pass` start-up: an interpreter with a standard library to load, in an image
// built from the host's Debian python3 (interpreter, ldd libraries, stdlib).
import { type Command, timeCommands } from "../lib/hyperfine.js";
import { pythonImage } from "../lib/images.js";
import { probeCommand } from "../lib/probe.js";
import { result } from "../lib/stats.js";
import { bundle, moatProblem, moatRunArgv, ociRunArgv, ociRuntimeProblem } from "../lib/subjects.js";
import type { Scenario } from "../lib/types.js";

const ARGS = ["python3", "-c", "pass"];

export const python: Scenario = {
  id: "python",
  title: "`python3 -c pass` start-up",
  async run(ctx) {
    let image: string;
    try {
      image = await pythonImage(ctx);
    } catch (e) {
      return { id: this.id, title: this.title, skipped: `no Python image: ${(e as Error).message}` };
    }
    const commands: Command[] = [{ subject: "native", argv: ["/usr/bin/python3", "-c", "pass"] }];
    const missing: Record<string, string> = {};
    const runcProblem = await ociRuntimeProblem(ctx, "runc");
    if (runcProblem) missing.runc = runcProblem;
    else
      commands.push({
        subject: "runc",
        argv: ociRunArgv(ctx, "runc", await bundle(ctx, ARGS, image), "bench-python"),
      });
    missing.crun = (await ociRuntimeProblem(ctx, "crun")) ?? "not measured in this scenario";
    const ukProblem = await moatProblem("userkernel");
    if (ukProblem) missing["moat userkernel"] = ukProblem;
    else {
      const argv = moatRunArgv(ctx, "userkernel", ARGS, image);
      const fails = await probeCommand(argv);
      if (fails) missing["moat userkernel"] = `python3 -c pass fails under the userkernel: ${fails}`;
      else commands.push({ subject: "moat userkernel", argv });
    }
    const vmProblem = await moatProblem("vm");
    if (vmProblem) missing["moat vm"] = vmProblem;
    else if (ctx.quick) missing["moat vm"] = "quick mode: each VM run takes seconds under TCG";
    else {
      const argv = moatRunArgv(ctx, "vm", ARGS, image);
      const fails = await probeCommand(argv);
      if (fails) missing["moat vm"] = `python3 -c pass fails in the vm: ${fails}`;
      else commands.push({ subject: "moat vm", argv });
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
        "Whole-command wall time (sandbox start-up included). The image holds the host's /usr/bin/python3, the libraries ldd names and its standard library (without test, idlelib, tkinter, turtledemo, ensurepip, lib2to3, pydoc_data, site/dist-packages).",
      ],
    });
  },
};
