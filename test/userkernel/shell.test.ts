// busybox sh scripts of many processes (fork, exec, wait, pipes between processes) under the
// userkernel, each compared with the same busybox run natively on the host: the image's
// /bin holds relative links to its busybox, so a PATH of that directory runs the same
// applets natively, and the scripts use relative paths from a fresh working directory.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Outcome } from "./helpers.js";
import { type BusyboxBundle, busyboxBundle, runIn } from "./rootfs-run.js";

function runNative(rootfs: string, cwd: string, script: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(rootfs, "bin", "sh"), ["-c", script], {
      cwd,
      env: { PATH: path.join(rootfs, "bin") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on("data", (c: Buffer) => out.push(c));
    p.stderr.on("data", (c: Buffer) => err.push(c));
    p.on("error", reject);
    p.on("close", (code) => {
      resolve({
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        code: code ?? -1,
      });
    });
  });
}

// [what, script, lines its output must hold]
const SCRIPTS: Array<[string, string, string[]]> = [
  ["pipes", "echo a | wc -c; printf 'x\\ny\\nz\\n' | sort -r | head -2 | tr a-z A-Z", ["Z", "Y"]],
  [
    "subshells, command substitution and statuses",
    '(exit 3); echo "sub $?"; echo "$(echo in $(echo nested))"; x=$(false); echo "subst $?"; false | true; echo "pipe $?"; (cd .. && pwd >/dev/null); echo done',
    ["sub 3", "in nested", "subst 1", "pipe 0", "done"],
  ],
  [
    "redirections",
    "echo one > f; echo two >> f; cat < f; { echo err >&2; echo out; } 2>e >o; cat e o; cat f | wc -l",
    ["one", "two", "err", "out"],
  ],
  [
    "find | xargs | sort | uniq",
    "mkdir -p t/a t/b/c; echo 1 > t/a/f; echo 2 > t/b/g; echo 1 > t/b/c/h; echo 3 > t/b/c/i; find t -type f | sort | xargs cat | sort | uniq -c",
    ["      2 1", "      1 2"],
  ],
  [
    "tar c | tar x round trip",
    "mkdir -p src/d; echo hello > src/d/x; seq 1 500 > src/y; ln -s d/x src/l; tar cf - src | (mkdir dst && cd dst && tar xf -); find dst | sort; cmp src/y dst/src/y && echo same; cat dst/src/l",
    ["dst/src/d/x", "same", "hello"],
  ],
  [
    "50 fork+exec of busybox true, and the script's own exit code",
    'i=0; while [ $i -lt 50 ]; do busybox true || echo fail; i=$((i+1)); done; echo "ran $i"; exit 7',
    ["ran 50"],
  ],
];

describe("busybox sh with many processes, as natively", () => {
  let b: BusyboxBundle;
  let n = 0;
  before(async () => {
    b = await busyboxBundle();
  });
  after(() => b.remove());

  for (const [what, script, lines] of SCRIPTS) {
    it(what, async () => {
      const dir = `w${n++}`;
      const native = fs.mkdtempSync(path.join(os.tmpdir(), "moat-shell-native-"));
      try {
        fs.mkdirSync(path.join(b.rootfs, dir));
        const want = await runNative(b.rootfs, native, script);
        const got = await runIn(b.rootfs, ["sh", "-c", script], { cwd: `/${dir}` });
        assert.equal(got.stderr, want.stderr);
        assert.equal(got.stdout, want.stdout);
        assert.equal(got.code, want.code);
        for (const line of lines)
          assert.ok(got.stdout.includes(`${line}\n`), `missing "${line}" in:\n${got.stdout}`);
      } finally {
        fs.rmSync(native, { recursive: true, force: true });
      }
    });
  }
});
