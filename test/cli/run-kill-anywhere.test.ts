// Nothing leaks, however a run ends: a foreground `moat run` is SIGKILLed at 20 points of its
// life in each isolation (named steps through the test-only MOAT_TEST_KILL_AT, the moment a
// helper process appears, and plain delays), and after the next moat command (`moat ps`) the
// host's mount table, the files under ROOT and the processes are as before the run.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { descendantsOf } from "../../src/sys/pids.js";
import { prctl } from "../../src/sys/process.js";
import {
  leftovers,
  liveChildren,
  moatSync,
  NOTHING,
  type Running,
  startMoat,
  until,
} from "../helpers/foreground.js";
import { processesWith } from "../helpers/procs.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

const PR_SET_CHILD_SUBREAPER = 36;
before(() => {
  // A dead moat's orphans (QEMU, passt, the gofer, stubs) become this process's children, so
  // every one that outlived it is found, whatever its command line says.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
});

type Point =
  | { step: string } // MOAT_TEST_KILL_AT: moat kills itself there
  | { helper: RegExp; name: string } // killed as soon as such a descendant exists
  | { afterMs: number }; // killed after this long

const STEPS = [
  "run-recorded",
  "bundle-leased",
  "bundle-renamed",
  "bundle-mounted",
  "bundle-made",
  "sandbox-created",
  "container-created",
  "container-started",
  "container-waiting",
  "signal-forwarded",
  "container-exited",
  "cleanup-started",
  "sandbox-destroyed",
  "bundle-removed",
];

const label = (p: Point) =>
  "step" in p ? p.step : "helper" in p ? `when ${p.name} runs` : `after ${p.afterMs} ms`;

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/** Start a run, kill it at the point, and wait for it to be dead. */
async function killAt(root: string, isolation: string[], p: Point): Promise<void> {
  const env = "step" in p ? { MOAT_TEST_KILL_AT: p.step } : {};
  const r: Running = startMoat(root, ["run", ...isolation, "default", "sleep", "2"], env);
  const pid = r.child.pid!;
  if ("step" in p && p.step === "signal-forwarded") {
    // The step comes once moat forwards a signal: send one when the container runs.
    await until(
      "the container to run",
      () =>
        r.child.exitCode !== null ||
        r.child.signalCode !== null ||
        /"status":"running"/.test(recordText(root, pid)),
      240_000,
    );
    r.child.kill("SIGTERM");
  } else if ("helper" in p) {
    await until(
      `${p.name} to start`,
      () =>
        r.child.exitCode !== null ||
        r.child.signalCode !== null ||
        descendantsOf(pid).some((d) => p.helper.test(cmdlineOf(d.pid))),
      240_000,
    );
    r.child.kill("SIGKILL");
  } else if ("afterMs" in p) {
    await new Promise((res) => setTimeout(res, p.afterMs));
    r.child.kill("SIGKILL");
  }
  const x = await r.done;
  // Killed at that point, not ended by itself (a misspelt step would let the run finish).
  assert.equal(x.signal, "SIGKILL", `${label(p)}: moat ended with ${x.code}: ${x.stderr}`);
}

function recordText(root: string, pid: number): string {
  try {
    return leftovers(root)
      .runs.filter((n) => n.endsWith(".json"))
      .map((n) => readFileSync(`${root}/runs/${n}`, "utf8"))
      .filter((t) => t.includes(`"pid":${pid},`))
      .join("");
  } catch {
    return "";
  }
}

/** After the next moat command: no mounts, files, or processes left of the runs. */
async function assertNothingLeft(root: string, what: string): Promise<void> {
  const ps = moatSync(root, ["ps"]);
  assert.equal(ps.status, 0, `${what}: moat ps failed: ${ps.stderr}`);
  assert.equal(ps.stderr, "", `${what}: moat ps said something`);
  assert.equal(ps.stdout, "", `${what}: moat ps lists a dead run`);
  assert.deepEqual(leftovers(root), NOTHING, what);
  // Helpers die with moat (PDEATHSIG, EXITKILL) or by the reaper; give a dying QEMU a moment.
  const left = await until(
    "the helpers to die",
    () => {
      const l = [...liveChildren(), ...processesWith(root).map((pid) => ({ pid, cmdline: cmdlineOf(pid) }))];
      return l.length === 0 ? [] : undefined;
    },
    10_000,
  ).catch(() => [...liveChildren(), ...processesWith(root).map((pid) => ({ pid, cmdline: cmdlineOf(pid) }))]);
  assert.deepEqual(left, [], `${what}: processes left`);
}

async function killEverywhere(root: string, isolation: string[], points: Point[], atOnce: number) {
  const warm = moatSync(root, ["run", ...isolation, "default", "true"]);
  assert.equal(warm.status, 0, warm.stderr);
  assert.deepEqual(leftovers(root), NOTHING);
  for (let i = 0; i < points.length; i += atOnce) {
    const batch = points.slice(i, i + atOnce);
    await Promise.all(batch.map((p) => killAt(root, isolation, p)));
    await assertNothingLeft(root, batch.map(label).join(", "));
  }
}

describe("SIGKILL a foreground moat run anywhere: nothing is left", () => {
  test("userkernel: 20 points", { timeout: 600_000 }, async () => {
    const points: Point[] = [
      ...STEPS.map((step) => ({ step })),
      { helper: /moat-gofer/, name: "the gofer" },
      ...[200, 500, 800, 1200, 1600].map((afterMs) => ({ afterMs })),
    ];
    assert.equal(points.length, 20);
    await killEverywhere(tempDir(), ["--isolation", "userkernel"], points, 1);
  });

  test("vm: 20 points, two runs at a time", { timeout: 1_500_000 }, async () => {
    const points: Point[] = [
      // before the boot: cheap
      ...STEPS.slice(0, 5).map((step) => ({ step })),
      { helper: /^passt /, name: "passt" },
      { helper: /^qemu-system\S* -M microvm/, name: "QEMU" },
      ...[1000, 3000, 6000, 10_000].map((afterMs) => ({ afterMs })),
      // after the boot
      ...STEPS.slice(5).map((step) => ({ step })),
    ];
    assert.equal(points.length, 20);
    await killEverywhere(tempDir(), ["--isolation", "vm", "--cpus", "1"], points, 2);
  });
});
