// Static C programs compiled by the test, run natively and under the userkernel: the same
// output, and the lines that show each got through its cases. One line per program.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { assertSameAsNative, C_DIR, workdir } from "./helpers.js";

const run = promisify(execFile);

/** The host processes whose parent is this test process, but the gofers: the stubs. */
function stubsOfThisProcess(): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "latin1");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      if (Number(stat.slice(close + 2).split(" ")[1]) === process.pid && comm !== "moat-gofer")
        out.push(Number(name));
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}

// [program, gcc flags beyond -static, lines its output must hold]
const PROGRAMS: Array<[string, string[], string[]]> = [
  [
    "forkwait",
    [],
    [
      "exit code: exited 7",
      "raise TERM: killed by 15",
      "vfork _exit: exited 8",
      "waitid killed: code 2 status 9",
    ],
  ],
  [
    "forkmany",
    [],
    ["200 forks reaped, codes sum to 10684", "then wait: -1 (ECHILD)", "20 at once, reaped 20"],
  ],
  ["clonethread", [], ["exit_group from a thread: exited 1 code 5", "waitpid __WCLONE: ok 1 code 0"]],
];

describe("C programs as natively", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  before(async () => {
    w = await workdir();
  });
  after(() => w.remove());

  for (const [name, flags, lines] of PROGRAMS) {
    it(name, async () => {
      const bin = join(w.dir, name);
      await run("gcc", ["-static", "-O1", ...flags, "-o", bin, join(C_DIR, `${name}.c`)]);
      await assertSameAsNative(bin, lines);
      // Every process it made is gone, and so is its stub: none is left behind on the host.
      assert.deepEqual(stubsOfThisProcess(), []);
    });
  }
});
