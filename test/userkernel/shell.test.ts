// busybox sh scripts (issue 11's "Must show"), each run by Debian's busybox-static natively
// (with a PATH of links to its applets only, so `sort` is busybox's sort as in the image) and
// under the userkernel in moat's built-in image: the same stdout and the same exit status.
// The scripts work in their current directory (a fresh temp dir natively, /tmp, the kernel's
// own tmpfs, in the container) and print no paths, pids or times. Last, `trap` against a
// TERM from outside: natively a kill(2) of the shell, in moat a `moat kill -s TERM` of a
// detached userkernel container, whose handler's exit code `moat wait` reports.
//
// ENABLED lists the scripts that pass under the userkernel today; enabling one as its feature
// lands is a one-line change. MOAT_SHELL=all (or a comma list) runs the others to see where
// they stand.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { cli } from "../helpers/moat-cli.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";
import type { Outcome } from "./helpers.js";
import { type BusyboxBundle, busyboxBundle, runIn } from "./rootfs-run.js";

after(cleanupTempDirs);

/** The scripts that pass under the userkernel today. */
export const ENABLED: string[] = [
  "builtins",
  "pipes",
  "subshells",
  "redirections",
  "substitution",
  "background",
  "kill-job",
  "trap",
  "trap-exit",
  "find-xargs",
  "read-loop",
  "statuses",
  "tar",
  "moat-kill-trap",
  "moat-kill-trap-builtin",
];

const SCRIPTS: Record<string, string> = {
  // No process is made: the shell's own builtins, variables, functions and arithmetic.
  builtins: `x=3; y=$((x * 7)); echo "y=$y"; set -- a "b c"; echo "$# $2"; f() { echo "in f $1"; return 4; }; f arg; echo "f returned $?"; case abc in a*) echo matched;; esac; i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo "i=$i"; printf '%s-%d\\n' p 5`,
  pipes: `echo hello world | tr a-z A-Z; seq 1 100 | grep 7 | wc -l; printf 'b\\na\\nc\\n' | sort | head -n 2; echo done | cat | cat | cat; false | true; echo "last of a pipeline: $?"; true | false; echo "and now: $?"`,
  subshells: `x=1; (x=2; echo "inner $x"); echo "outer $x"; (cd /; pwd); (exit 3); echo "subshell exit $?"; { echo grouped; echo lines; } | wc -l; ( ( (echo deep) ) )`,
  redirections: `echo a > f; echo b >> f; cat < f; wc -l < f; ls /nonexistent 2>/dev/null; echo "ls said $?"; ls /nonexistent 2>&1 >/dev/null | wc -l; exec 3> g; echo three >&3; exec 3>&-; cat g; cat <<END
here $((1 + 1))
END
cat <<'END'
quoted $x
END
: > empty; wc -c < empty`,
  substitution: `n=$(echo one two three | wc -w); echo "words: $n"; echo "$(echo "$(echo nested)")"; files=$(ls /etc | wc -l); [ "$files" -gt 0 ] && echo "ls /etc counted"; a=\`echo back\`ticks; echo $a; echo "exit of false inside: $(false; echo $?)"`,
  background: `(exit 4) & a=$!; sleep 0.2 & b=$!; wait $a; echo "a: $?"; wait $b; echo "b: $?"; for i in 1 2 3; do (exit $i) & done; wait; echo "all waited: $?"; echo "jobs left: $(jobs | wc -l)"`,
  "kill-job": `sleep 30 & kill %1; wait %1; echo "killed job: $?"; sleep 30 & p=$!; kill -9 $p; wait $p; echo "kill -9: $?"`,
  trap: `trap 'echo "got USR1"' USR1; kill -USR1 $$; echo after; trap 'echo "got TERM"; exit 7' TERM; kill -TERM $$; echo "not reached"`,
  "trap-exit": `trap 'echo "exit trap, status $?"' EXIT; echo body; (exit 5)`,
  "find-xargs": `mkdir -p d/a d/b/c; for i in 1 2 3; do echo x > d/a/f$i; echo y > d/b/f$i; done; echo z > d/b/c/f1; find d -type f | sort; find d -type f | xargs cat | sort | uniq -c; find d -name 'f1' | xargs -n 1 basename | uniq; find d -type d | wc -l`,
  "read-loop": `printf 'a 1\\nb 2\\nc 3\\n' | while read k v; do echo "$v$k"; done; echo "x y" | { read a b; echo "$b $a"; }; n=0; while read line; do n=$((n+1)); done < /etc/passwd; [ $n -gt 0 ] && echo "read /etc/passwd"; seq 1 5 | (sum=0; while read i; do sum=$((sum+i)); done; echo "sum $sum")`,
  statuses: `sh -c 'exit 7'; echo "exit 7: $?"; sh -c 'exit 300'; echo "exit 300: $?"; sh -c 'kill -TERM $$'; echo "TERM: $?"; sh -c 'kill -9 $$'; echo "KILL: $?"; /no/such 2>/dev/null; echo "missing: $?"; echo 'echo from a script with no interpreter line' > s; ./s 2>/dev/null; echo "not executable: $?"; chmod +x s; ./s; echo "script: $?"; printf '#!/bin/sh\\necho "args $#: $1"\\nexit 4\\n' > t; chmod +x t; ./t one; echo "#! script: $?"`,
  tar: `mkdir -p src/sub; echo hello > src/sub/file; printf 'x%.0s' $(seq 1 5000) > src/big; ln -s file src/sub/link; chmod 640 src/sub/file; tar cf - src | (mkdir dst && cd dst && tar xf -); find dst | sort; cat dst/src/sub/file; readlink dst/src/sub/link; stat -c '%a %s' dst/src/sub/file dst/src/big; (cd src && find . -type f | sort | xargs md5sum) > a; (cd dst/src && find . -type f | sort | xargs md5sum) > b; cmp a b && echo "same contents"; tar czf t.tgz src && mkdir z && tar xzf t.tgz -C z && diff -r src z/src && echo "gzip round trip"`,
};

/** TERM-trap scripts for `moat kill`, by test name. */
const TERM_TRAPS: Record<string, string> = {
  // Waits in a loop of `sleep 1` children: the trap runs when the current one ends.
  "moat-kill-trap": `trap 'echo trapped; exit 42' TERM; echo ready; while :; do sleep 1; done`,
  // Spins in the shell itself, forking nothing: the TERM stops it in application code.
  "moat-kill-trap-builtin": `trap 'echo trapped; exit 42' TERM; echo ready; while :; do :; done`,
};

const TIMEOUT_MS = 120_000;

function selected(): string[] {
  const want = process.env.MOAT_SHELL;
  const all = [...Object.keys(SCRIPTS), ...Object.keys(TERM_TRAPS)];
  const names = want === "all" ? all : want ? want.split(",").map((s) => s.trim()) : ENABLED;
  for (const n of names) if (!all.includes(n)) throw new Error(`no shell script ${n} in shell.test.ts`);
  return names;
}

/** A dir of links to every busybox applet: the native PATH, so no host tool stands in. */
async function appletDir(base: string): Promise<string> {
  const dir = path.join(base, "bin");
  await mkdir(dir);
  const list = await new Promise<string>((resolve, reject) => {
    const p = spawn("/bin/busybox", ["--list"]);
    let out = "";
    p.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    p.on("error", reject);
    p.on("close", () => resolve(out));
  });
  for (const name of list.split("\n").filter(Boolean)) await symlink("/bin/busybox", path.join(dir, name));
  return dir;
}

/** busybox sh -c SCRIPT natively in `cwd`; `during` runs once the process is spawned. */
function runNativeSh(
  script: string,
  bin: string,
  cwd: string,
  during?: (pid: number, output: () => string) => Promise<void>,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const p = spawn("/bin/busybox", ["sh", "-c", script], {
      cwd,
      env: { PATH: bin },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    p.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    p.on("error", reject);
    p.on("close", (code, signal) => {
      const o: Outcome = { stdout: out, stderr: err };
      if (code !== null) o.code = code;
      if (signal !== null) o.signal = signal;
      resolve(o);
    });
    if (during) during(p.pid!, () => out).catch(reject);
  });
}

const status = (o: Outcome): string => (o.signal !== undefined ? `signal ${o.signal}` : `exit ${o.code}`);

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe("busybox sh scripts: native vs userkernel", () => {
  let b: BusyboxBundle;
  let base: string;
  let bin: string;
  before(async () => {
    b = await busyboxBundle();
    base = await mkdtemp(path.join(tmpdir(), "userkernel-shell-"));
    bin = await appletDir(base);
  });
  after(async () => {
    await b?.remove();
    if (base) await rm(base, { recursive: true, force: true });
  });

  test("the native side runs busybox's own applets", async () => {
    // The harness's own check, also while nothing that forks is enabled.
    const o = await runNativeSh("type sort; sort --help 2>&1 | head -n 1", bin, base);
    assert.match(o.stdout, /BusyBox/);
  });

  for (const name of selected().filter((n) => n in SCRIPTS)) {
    test(name, { timeout: TIMEOUT_MS + 30_000 }, async () => {
      const cwd = await mkdtemp(path.join(base, `${name}-`));
      const native = await runNativeSh(SCRIPTS[name]!, bin, cwd);
      assert.ok(native.stdout.length > 0, `the script printed nothing natively: ${native.stderr}`);
      const user = await runIn(b.rootfs, ["sh", "-c", SCRIPTS[name]!], {
        cwd: "/tmp",
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      const why = `userkernel: ${status(user)}\n${user.stderr}`;
      assert.equal(user.stdout, native.stdout, why);
      assert.equal(status(user), status(native), why);
    });
  }

  for (const [name, TERM_TRAP] of Object.entries(TERM_TRAPS).filter(([n]) => selected().includes(n)))
    test(`${name}: TERM from moat kill runs sh's trap, moat wait reports its exit code`, {
      timeout: 4 * TIMEOUT_MS,
    }, async () => {
      const native = await runNativeSh(TERM_TRAP, bin, base, async (pid, out) => {
        await until("native ready", () => out().includes("ready\n"));
        process.kill(pid, "SIGTERM");
      });
      assert.equal(native.stdout, "ready\ntrapped\n");
      assert.equal(status(native), "exit 42");

      const moat = cli(tempDir("moat-shell-"), TIMEOUT_MS);
      const run = moat(["run", "-d", "--isolation", "userkernel", "default", "sh", "-c", TERM_TRAP]);
      assert.equal(run.status, 0, run.stderr);
      const id = run.stdout.trim();
      await until("the container's ready line", () => moat(["logs", id]).stdout.includes("ready\n"));
      const kill = moat(["kill", "-s", "TERM", id]);
      assert.equal(kill.status, 0, kill.stderr);
      const wait = moat(["wait", id]);
      assert.equal(wait.stdout, `${native.code}\n`, wait.stderr);
      assert.equal(moat(["logs", id]).stdout, native.stdout);
      assert.equal(moat(["rm", "-f", id]).status, 0);
    });
});
