// The real `moat` CLI with --isolation userkernel: flags the userkernel cannot honour are
// refused with a message naming them, --memory is honoured, and the processes it spawns
// (stubs, gofer) sit outside moat's process group, so a terminal's ^C reaches moat alone.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { childrenOf } from "../helpers/procs.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

const MAIN = new URL("../../src/cli/main.js", import.meta.url).pathname;

/** pgrp and session of a host process (fields 5 and 6 of /proc/pid/stat), or undefined once gone. */
function groupOf(pid: number): { pgrp: number; session: number; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: f[0]!, pgrp: Number(f[2]), session: Number(f[3]) };
  } catch {
    return undefined;
  }
}

const gone = (pid: number): boolean => {
  const g = groupOf(pid);
  return g === undefined || g.state === "Z";
};

describe("moat run --isolation userkernel, the CLI", () => {
  const root = tempDir();
  const moat = (args: string[]) =>
    spawnSync(process.execPath, [MAIN, "--root", root, "run", "--isolation", "userkernel", ...args], {
      encoding: "utf8",
      input: "",
    });

  test("-p, --network nat and --cpus are refused with what to do; nothing runs", () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ["-p", "8080:80"],
        /the userkernel has no network yet, so it cannot forward ports: drop -p.*--isolation vm/,
      ],
      [["--network", "nat"], /the userkernel has no network yet: drop --network nat.*--isolation vm/],
      [["--cpus", "1"], /the userkernel cannot limit CPUs yet: drop --cpus.*--isolation vm/],
    ];
    for (const [flags, message] of cases) {
      const r = moat([...flags, "default", "echo", "ran"]);
      assert.notEqual(r.status, 0, `${flags.join(" ")} must fail`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "", "the container never ran");
    }
    // What the userkernel is anyway is accepted.
    const none = moat(["--network", "none", "default", "echo", "ran"]);
    assert.equal(none.status, 0, none.stderr);
    assert.equal(none.stdout, "ran\n");
  });

  test("--memory is honoured: it is the container's MemTotal", () => {
    const r = moat(["--memory", "96m", "default", "cat", "/proc/meminfo"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^MemTotal:\s+98304 kB$/m);
  });

  test("exit statuses: 127 not found, 126 not runnable, 128+n for a signal", () => {
    const missing = moat(["default", "nosuch"]);
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /exec: "nosuch": executable file not found in \$PATH/);
    const denied = moat(["default", "/etc/passwd"]);
    assert.equal(denied.status, 126);
    assert.match(denied.stderr, /exec: "\/etc\/passwd": permission denied/);
  });

  test("a SIGINT to moat's process group reaches moat only: stubs and gofer are in their own process groups", async () => {
    // The container ignores SIGINT (SIG_IGN survives exec): moat forwards the ^C and the
    // container runs on. Had the stub been in the group, the host would have stopped it
    // with SIGINT itself, and the container would have died of it.
    const child = spawn(
      process.execPath,
      [
        MAIN,
        "--root",
        root,
        "run",
        "--isolation",
        "userkernel",
        "default",
        "sh",
        "-c",
        "trap '' INT; exec sleep 100",
      ],
      { detached: true, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const moatPid = child.pid!;
    try {
      // The stub (moat-stub) and the gofer are moat's children once the container runs.
      let kids: number[] = [];
      for (let i = 0; i < 300 && kids.length < 2; i++) {
        await sleep(100);
        kids = childrenOf(moatPid).filter((p) => !gone(p));
      }
      assert.ok(kids.length >= 2, `stub and gofer started (children: ${kids}); moat said: ${stderr}`);
      await sleep(500); // let sh exec sleep
      // The exec gave the program a new stub (a new address space): look again.
      kids = childrenOf(moatPid).filter((p) => !gone(p));
      assert.ok(kids.length >= 2, `stub and gofer run after the exec (children: ${kids})`);
      const mine = groupOf(moatPid)!;
      assert.equal(mine.pgrp, moatPid, "moat leads its own group (detached)");
      for (const k of kids) {
        // The gofer leads a group of its own; the stubs share the platform's one group.
        const g = groupOf(k)!;
        assert.notEqual(g.pgrp, mine.pgrp, `child ${k} is not in moat's process group`);
      }
      process.kill(-moatPid, "SIGINT");
      await sleep(1000);
      for (const k of kids) assert.ok(!gone(k), `child ${k} still runs after the group's SIGINT`);
      assert.equal(child.exitCode, null, `moat still runs: ${stderr}`);
      // SIGKILL of moat: everything it spawned goes with it.
      process.kill(moatPid, "SIGKILL");
      await exited;
      for (let i = 0; i < 50 && !kids.every(gone); i++) await sleep(100);
      for (const k of kids) assert.ok(gone(k), `child ${k} died with moat`);
    } finally {
      try {
        process.kill(-moatPid, "SIGKILL");
      } catch {
        // gone
      }
    }
  });
});
