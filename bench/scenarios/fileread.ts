// 3. File read: a 64 MiB file of random bytes from the image, read with `dd` into
// /dev/null, minus the same subject's `true`, so sandbox start-up is not counted.
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import * as path from "node:path";
import { bigFileImage } from "../lib/images.js";
import { NET_FLOOR_MS, netTimes, type Pair } from "../lib/net.js";
import { result } from "../lib/stats.js";
import { bundle, moatProblem, moatRunArgv, ociRunArgv, ociRuntimeProblem } from "../lib/subjects.js";
import type { Scenario } from "../lib/types.js";

const BUSYBOX = "/bin/busybox";

export const fileRead: Scenario = {
  id: "fileread",
  title: "File read: 64 MiB from the image",
  async run(ctx) {
    const mib = ctx.quick ? 4 : 64;
    const data = randomBytes(mib * 2 ** 20);
    const hostFile = path.join(ctx.work, "big");
    await writeFile(hostFile, data);
    const image = await bigFileImage(ctx, data);
    const dd = (file: string) => ["dd", `if=${file}`, "of=/dev/null", "bs=1M"];
    const pairs: Pair[] = [{ subject: "native", base: [BUSYBOX, "true"], work: [BUSYBOX, ...dd(hostFile)] }];
    const missing: Record<string, string> = {};
    const runcProblem = await ociRuntimeProblem(ctx, "runc");
    if (runcProblem) missing.runc = runcProblem;
    else {
      const t = await bundle(ctx, ["true"], image);
      const r = await bundle(ctx, dd("/big"), image);
      pairs.push({
        subject: "runc",
        base: ociRunArgv(ctx, "runc", t, "bench-fileread-true"),
        work: ociRunArgv(ctx, "runc", r, "bench-fileread"),
      });
    }
    missing.crun = (await ociRuntimeProblem(ctx, "crun")) ?? "not measured in this scenario";
    for (const iso of ["userkernel", "vm"] as const) {
      const problem = await moatProblem(iso);
      if (problem) missing[`moat ${iso}`] = problem;
      else if (iso === "vm" && ctx.quick)
        missing["moat vm"] = "quick mode: each VM run takes seconds under TCG";
      else
        pairs.push({
          subject: `moat ${iso}`,
          base: moatRunArgv(ctx, iso, ["true"], image),
          work: moatRunArgv(ctx, iso, dd("/big"), image),
        });
    }
    const { measurements, notes } = await netTimes(ctx, pairs);
    return result({
      id: this.id,
      title: this.title,
      unit: "ms",
      baseline: "native",
      measurements,
      missing,
      notes: [
        `${mib} MiB of random bytes in an image layer (native: the same bytes in a host file), read by busybox \`dd bs=1M\` to /dev/null.`,
        `Figures are read cost: whole command - median of \`true\` for the same subject and image (net below ${NET_FLOOR_MS} ms is shown as ${NET_FLOOR_MS}).`,
        "The file is in the host page cache after the warm-up run for every subject (moat vm reads it through virtio-9p).",
        ...notes,
      ],
    });
  },
};
