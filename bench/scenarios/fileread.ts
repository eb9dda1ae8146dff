// 3. File read: a 64 MiB file of random bytes from the image, read by a static C program
// that times its own passes (open to close) inside the sandbox, so sandbox start-up, which
// dwarfs the read in moat's case, is never part of the figure.
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { bigFileImage } from "../lib/images.js";
import { figures, hostTscKhz, type Passes, passCount, timedPasses } from "../lib/passes.js";
import { measurement, result } from "../lib/stats.js";
import {
  bundle,
  compileFloor,
  moatProblem,
  moatRunArgv,
  ociRunArgv,
  ociRuntimeProblem,
} from "../lib/subjects.js";
import type { Measurement, Scenario } from "../lib/types.js";

export const fileRead: Scenario = {
  id: "fileread",
  title: "File read: 64 MiB from the image",
  async run(ctx) {
    const mib = ctx.quick ? 4 : 64;
    const data = randomBytes(mib * 2 ** 20);
    const hostFile = path.join(ctx.work, "big");
    await writeFile(hostFile, data);
    const reader = await compileFloor(ctx, "read_timed.c", ["-static", "-O2"]);
    const image = await bigFileImage(ctx, data, [
      { name: "read_timed", mode: 0o755, content: await readFile(reader) },
    ]);
    const passes = String(passCount(ctx));
    const inImage = ["/read_timed", "/big", passes];
    const subjects: Array<{ subject: string; argv: string[] }> = [
      { subject: "native", argv: [reader, hostFile, passes] },
    ];
    const missing: Record<string, string> = {};
    const runcProblem = await ociRuntimeProblem(ctx, "runc");
    if (runcProblem) missing.runc = runcProblem;
    else
      subjects.push({
        subject: "runc",
        argv: ociRunArgv(ctx, "runc", await bundle(ctx, inImage, image), "bench-fileread"),
      });
    missing.crun = (await ociRuntimeProblem(ctx, "crun")) ?? "not measured in this scenario";
    for (const iso of ["userkernel", "vm"] as const) {
      const problem = await moatProblem(iso);
      if (problem) missing[`moat ${iso}`] = problem;
      else if (iso === "vm" && ctx.quick)
        missing["moat vm"] = "quick mode: a VM boot takes seconds under TCG";
      else {
        subjects.push({ subject: `moat ${iso}`, argv: moatRunArgv(ctx, iso, inImage, image) });
        // The same image given to the guest as an erofs disk instead of through 9p.
        if (iso === "vm")
          subjects.push({
            subject: "moat vm, rootfs on a disk",
            argv: ["env", "MOAT_VM_ROOTFS=block", ...moatRunArgv(ctx, iso, inImage, image)],
          });
      }
    }
    const measurements: Measurement[] = [];
    const rates: string[] = [];
    let vmNote: string | undefined;
    for (const s of subjects) {
      ctx.log(`  ${s.subject}: ${s.argv.join(" ")}`);
      let passes: Passes;
      try {
        passes = await timedPasses(ctx, s.argv);
      } catch (e) {
        if (s.subject === "native") throw e;
        missing[s.subject] = `the reader failed: ${(e as Error).message}`;
        continue;
      }
      // A short read would make a sandbox look fast: every pass must see the whole file.
      const short = passes.rows.find((r) => Number(r[1]) !== data.length);
      if (short) throw new Error(`${s.subject} read ${short[1]} bytes of ${data.length}`);
      // The guest kernel's clock is not to be trusted under TCG (see passes.ts): the vm's
      // passes are timed by the TSC ticks they took, at the host's rate.
      const vm = s.subject.startsWith("moat vm");
      const khz = vm ? await hostTscKhz(ctx) : 0;
      const m = measurement(
        s.subject,
        vm ? figures(passes.rows, 2).map((ticks) => ticks / khz) : figures(passes.rows),
      );
      if (s.subject === "moat vm")
        vmNote = `moat vm: each pass timed by the TSC ticks it took, at the host's rate (${(khz / 1000).toFixed(0)} MHz, measured in the run); by the guest kernel's clock the median pass took ${measurement("guest", figures(passes.rows)).median.toFixed(0)} ms.`;
      measurements.push(m);
      rates.push(`${s.subject} ${((mib * 1000) / m.median).toFixed(0)} MiB/s`);
    }
    return result({
      id: this.id,
      title: this.title,
      unit: "ms",
      baseline: "native",
      measurements,
      missing,
      notes: [
        `${mib} MiB of random bytes in an image layer (native: the same bytes in a host file), read with read(2) in 1 MiB calls by a static C program (bench/floors/read_timed.c) that times each pass from open to close itself: sandbox start-up is not in the figure.`,
        `Each subject runs the program once for ${passes} passes over the file; the first is a warm-up and dropped, so every figure reads from warm caches (moat vm: through virtio-9p, with whatever the guest caches; "rootfs on a disk": MOAT_VM_ROOTFS=block, the container's rootfs written into an erofs image at start and read from a read-only virtio-blk disk through the guest's page cache).`,
        `Throughput (medians): ${rates.join(", ")}.`,
        ...(vmNote ? [vmNote] : []),
      ],
    });
  },
};
