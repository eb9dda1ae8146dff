// The bench harness in --quick mode, so it cannot rot: every scenario yields figures or names
// why it was skipped, and the three report files are written. Never a speed assertion.
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, test } from "node:test";
import { isSkipped } from "../../bench/lib/types.js";
import { runBench, SCENARIOS } from "../../bench/run.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

test("bench --quick: every scenario gives a figure or a reason, and the reports are written", async () => {
  const out = tempDir();
  const run = await runBench({ quick: true, out, log: () => {} });
  assert.deepEqual(
    run.scenarios.map((s) => s.id),
    SCENARIOS.map((s) => s.id),
  );
  for (const s of run.scenarios) {
    if (isSkipped(s)) {
      assert.ok(s.skipped.length > 10, `${s.id} names why it was skipped`);
      assert.doesNotMatch(s.skipped, /^failed:/, `${s.id} did not crash`);
      continue;
    }
    assert.ok(s.measurements.length >= 2, `${s.id} measured a baseline and a subject`);
    for (const m of s.measurements) {
      assert.ok(Number.isFinite(m.median) && m.median >= 0, `${s.id}/${m.subject} has a figure`);
      assert.ok(Number.isFinite(s.ratios[m.subject]!), `${s.id}/${m.subject} has a ratio`);
    }
    assert.equal(s.ratios[s.baseline], 1);
  }
  // The baselines that need no moat backend always run here.
  for (const id of ["startup", "syscall"]) {
    const s = run.scenarios.find((x) => x.id === id)!;
    assert.ok(!isSkipped(s), `${id} ran`);
  }
  const files = (await fs.readdir(out)).sort();
  assert.equal(files.length, 3);
  const svg = await fs.readFile(path.join(out, files.find((f) => f.endsWith(".svg"))!), "utf8");
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  const md = await fs.readFile(path.join(out, files.find((f) => f.endsWith(".md"))!), "utf8");
  assert.match(md, /\| native \|/);
});
