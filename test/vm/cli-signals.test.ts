// A foreground `moat run --isolation vm` as a terminal runs it: in a process group of its
// own, which a ^C signals as a whole. QEMU and passt must not be in that group (they sit
// in sessions of their own), so the SIGINT reaches moat alone, which forwards it to the
// container; and they must still die with moat when moat is SIGKILLed.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { childrenOf } from "../helpers/procs.js";
import { cleanupTempDirs, mountsUnder, tempDir } from "../helpers/tmp.js";
import { alive, waitUntil } from "./helpers.js";

after(cleanupTempDirs);

const MAIN = new URL("../../src/cli/main.js", import.meta.url).pathname;

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The real CLI as a terminal's foreground job: the leader of a new process group. */
function moatRun(root: string, args: string[]): Run {
  const child = spawn(process.execPath, [MAIN, "--root", root, "run", "--isolation", "vm", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exit };
}

function nameOf(pid: number): string {
  try {
    return /^Name:\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "";
  } catch {
    return "";
  }
}

function pgidOf(pid: number): number {
  // Field 5 of /proc/PID/stat, after the parenthesised command name.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}

/** moat's QEMU and passt, once both run. */
async function helpersOf(moat: number): Promise<{ qemu: number; passt: number }> {
  let found: { qemu?: number; passt?: number } = {};
  await waitUntil(() => {
    const kids = childrenOf(moat);
    found = {
      qemu: kids.find((p) => nameOf(p).startsWith("qemu-system")),
      passt: kids.find((p) => nameOf(p).startsWith("passt")),
    };
    return found.qemu !== undefined && found.passt !== undefined;
  }, 10_000);
  assert.ok(found.qemu !== undefined && found.passt !== undefined, `QEMU and passt under moat ${moat}`);
  return found as { qemu: number; passt: number };
}

function noStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at .+:\d+:\d+\)?$/m, `no stack trace on stderr:\n${stderr}`);
  assert.doesNotMatch(stderr, /ttrpc connection lost/);
}

function nothingLeft(root: string, pids: number[]): void {
  for (const pid of pids) assert.equal(alive(pid), false, `${nameOf(pid) || "process"} ${pid} is gone`);
  assert.deepEqual(mountsUnder(root), [], "no mount is left under the root");
}

describe("moat run --isolation vm in a terminal's process group", () => {
  it("a ^C to the whole group reaches the container alone: the VM lives on, the exit status is the container's", async () => {
    const root = tempDir("moat-vm-sigint-");
    const run = moatRun(root, [
      "default",
      "sh",
      "-c",
      'trap "echo got INT; exit 130" INT; echo ready; sleep 100 & wait',
    ]);
    const pid = run.child.pid!;
    try {
      assert.ok(await waitUntil(() => run.stdout().includes("ready"), 400_000), `started: ${run.stderr()}`);
      const { qemu, passt } = await helpersOf(pid);
      assert.notEqual(pgidOf(qemu), pid, "QEMU is not in moat's process group");
      assert.notEqual(pgidOf(passt), pid, "passt is not in moat's process group");
      process.kill(-pid, "SIGINT");
      const x = await run.exit;
      // The guest was alive to run the container's trap: the SIGINT reached it through moat.
      assert.equal(run.stdout(), "ready\ngot INT\n");
      assert.deepEqual(x, { code: 130, signal: null });
      noStackTrace(run.stderr());
      nothingLeft(root, [qemu, passt]);
      assert.deepEqual(readdirSync(path.join(root, "sandboxes")), []);
      assert.deepEqual(readdirSync(path.join(root, "bundles")), []);
    } finally {
      run.child.kill("SIGKILL");
    }
  });

  it("a ^C the container ignores leaves the VM running; SIGKILLing moat still takes QEMU and passt down", async () => {
    const root = tempDir("moat-vm-sigkill-");
    // sleep as the container's PID 1 ignores a SIGINT it has no handler for.
    const run = moatRun(root, ["default", "sh", "-c", "echo ready; exec sleep 100"]);
    const pid = run.child.pid!;
    try {
      assert.ok(await waitUntil(() => run.stdout().includes("ready"), 400_000), `started: ${run.stderr()}`);
      const { qemu, passt } = await helpersOf(pid);
      process.kill(-pid, "SIGINT");
      await new Promise((r) => setTimeout(r, 3_000));
      assert.ok(alive(pid), `moat lives on: ${run.stderr()}`);
      assert.ok(alive(qemu), "QEMU was not killed by the terminal's SIGINT");
      assert.ok(alive(passt), "passt was not killed by the terminal's SIGINT");
      noStackTrace(run.stderr());
      process.kill(pid, "SIGKILL");
      await run.exit;
      assert.ok(
        await waitUntil(() => !alive(qemu) && !alive(passt), 10_000),
        "QEMU and passt died with moat",
      );
      // (The run's bundle and mounts are left to whoever reaps a dead moat's records.)
    } finally {
      run.child.kill("SIGKILL");
    }
  });
});
