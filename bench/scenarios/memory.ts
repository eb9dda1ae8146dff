// 6. Memory: PSS of every host process one idle sandbox consists of. runc: the container's
// process (runc itself exits after a detached start); moat: the moat process plus what it
// started (userkernel: stub and gofer; vm: QEMU, whose PSS includes the guest RAM touched).
import { type IdleKind, startIdle } from "../lib/idle.js";
import { commName, pssMiB } from "../lib/pss.js";
import { measurement, result } from "../lib/stats.js";
import { bundle, moatProblem, ociRuntimeProblem } from "../lib/subjects.js";
import type { Measurement, Scenario } from "../lib/types.js";

/** Idle long enough for start-up work (JIT, page faults of the boot) to settle. */
const SETTLE_MS = 1500;

export const memory: Scenario = {
  id: "memory",
  title: "Memory: PSS of one idle sandbox",
  async run(ctx) {
    const missing: Record<string, string> = {};
    const measurements: Measurement[] = [];
    const notes: string[] = [];
    const samples = Math.min(ctx.repeats, 3);
    const kinds: IdleKind[] = [];
    const runcProblem = await ociRuntimeProblem(ctx, "runc");
    if (runcProblem) missing.runc = runcProblem;
    else kinds.push("runc");
    for (const iso of ["userkernel", "vm"] as const) {
      const problem = await moatProblem(iso);
      if (problem) missing[`moat ${iso}`] = problem;
      else if (iso === "vm" && ctx.quick)
        missing["moat vm"] = "quick mode: a VM boot takes seconds under TCG";
      else kinds.push(iso);
    }
    // A clone of a VM template: its guest RAM is the template's file, mapped copy-on-write.
    if (kinds.includes("vm")) kinds.push("vm-template");
    const runcBundle = kinds.includes("runc") ? await bundle(ctx, ["sleep", "1000"]) : undefined;
    for (const kind of kinds) {
      const subject =
        kind === "runc" ? "runc" : kind === "vm-template" ? "moat vm (from a template)" : `moat ${kind}`;
      const values: number[] = [];
      const shapes = new Set<string>();
      for (let i = 0; i < samples; i++) {
        const sb = await startIdle(ctx, kind, runcBundle);
        let left: string[] = [];
        try {
          await new Promise((r) => setTimeout(r, SETTLE_MS));
          const pids = sb.pids();
          shapes.add(
            pids
              .map((p) => commName(p).replace(/ \d+$/, ""))
              .sort()
              .join(" + "),
          );
          values.push(pssMiB(pids));
        } finally {
          left = await sb.stop();
        }
        if (left.length) throw new Error(`${subject} left processes behind: ${left.join(", ")}`);
      }
      measurements.push(measurement(subject, values));
      notes.push(`${subject}: ${[...shapes].join(" or ")}.`);
    }
    if (kinds.includes("vm-template")) {
      // Clones share the template's pages they only read: two at once, PSS per sandbox.
      const subject = "moat vm (from a template), each of 2";
      const values: number[] = [];
      for (let i = 0; i < samples; i++) {
        const pair = [await startIdle(ctx, "vm-template"), await startIdle(ctx, "vm-template")];
        let left: string[] = [];
        try {
          await new Promise((r) => setTimeout(r, SETTLE_MS));
          values.push(pssMiB(pair.flatMap((sb) => sb.pids())) / 2);
        } finally {
          left = (await Promise.all(pair.map((sb) => sb.stop()))).flat();
        }
        if (left.length) throw new Error(`${subject} left processes behind: ${left.join(", ")}`);
      }
      measurements.push(measurement(subject, values));
    }
    notes.push(
      `PSS summed from /proc/<pid>/smaps_rollup ${SETTLE_MS} ms after the container started; ${samples} sandbox(es) per subject, one at a time.`,
      "runc: the container process only (runc run -d exits once it runs; no shim). moat: the Node process holding the sandbox through the TypeScript API and all its descendants.",
      "The vm figure includes the guest RAM QEMU has actually touched (kernel, a small initramfs, the pages of Node and the agent read from the read-only guest image, page cache).",
      "From a template (MOAT_VM_TEMPLATE=1): the guest RAM is the template's memory file mapped copy-on-write, and QEMU loads no kernel or initramfs. The template is made during the first sample's start (by one boot whose QEMU has exited before anything is measured); its pages that clones read are shared between them (the 'each of 2' row: PSS of two idle clones at once, halved).",
      "An esbuild process among moat's is the one ensureAssets starts to check the guest agent bundle; it stays alive with the moat process, so it is counted.",
    );
    const baseline = measurements.some((m) => m.subject === "runc") ? "runc" : measurements[0]?.subject;
    if (!baseline || measurements.length < 2)
      return {
        id: this.id,
        title: this.title,
        skipped: `too few subjects could run: ${Object.entries(missing)
          .map(([k, v]) => `${k}: ${v}`)
          .join("; ")}`,
      };
    return result({ id: this.id, title: this.title, unit: "MiB", baseline, measurements, missing, notes });
  },
};
