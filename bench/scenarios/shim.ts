// 9. containerd's path: `ctr run --rm` of `true` through moat's shim (each isolation) against
// containerd's own runc shim, with the same private containerd, image and snapshotter, in
// the same run. The private containerd is the one the shim tests start.
import { spawnSync } from "node:child_process";
import { type Containerd, RUNTIME, startContainerd } from "../../test/helpers/containerd.js";
import { cleanupTempDirs } from "../../test/helpers/tmp.js";
import { type Command, timeCommands } from "../lib/hyperfine.js";
import { result } from "../lib/stats.js";
import { moatProblem } from "../lib/subjects.js";
import type { Scenario } from "../lib/types.js";

const NS = "bench";
const IMAGE = "moat.local/busybox:latest";

function hasContainerd(): string | undefined {
  const r = spawnSync("containerd", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? undefined : "containerd is not installed (Debian package containerd)";
}

export const shim: Scenario = {
  id: "shim",
  title: "containerd: `ctr run --rm` of `true`, moat's shim against the runc shim",
  async run(ctx) {
    const missingContainerd = hasContainerd();
    if (missingContainerd) return { id: this.id, title: this.title, skipped: missingContainerd };
    let cd: Containerd | undefined;
    try {
      cd = await startContainerd({ namespaces: [NS] });
      const ctr = ["ctr", "--address", cd.address, "-n", NS, "run", "--rm"];
      const commands: Command[] = [
        {
          subject: "runc shim",
          argv: [...ctr, "--runtime", "io.containerd.runc.v2", IMAGE, "bench-runc", "true"],
        },
      ];
      const missing: Record<string, string> = {};
      for (const iso of ["userkernel", "vm"] as const) {
        const problem = await moatProblem(iso);
        if (problem) missing[`moat shim ${iso}`] = problem;
        else {
          commands.push({
            subject: `moat shim ${iso}`,
            argv: [
              ...ctr,
              "--runtime",
              RUNTIME,
              "--annotation",
              `run.moat.isolation=${iso}`,
              IMAGE,
              `bench-${iso}`,
              "true",
            ],
          });
        }
      }
      return result({
        id: this.id,
        title: this.title,
        unit: "ms",
        baseline: "runc shim",
        measurements: await timeCommands(ctx, commands),
        missing,
        notes: [
          "Whole `ctr run --rm` wall time from hyperfine: shim start, task create/start/wait/delete and shim exit, with containerd 1.6's overlayfs snapshotter.",
        ],
      });
    } finally {
      await cd?.stop();
      cleanupTempDirs();
    }
  },
};
