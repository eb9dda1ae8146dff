// A container of several processes leaves nothing on the host when it is killed from outside:
// a busybox sh with three background sleeps, one of them in a subshell of its own (five
// traced processes, each with its stub), killed (1) through the run's AbortSignal, as the
// Sandbox backend kills a container, and (2) by SIGKILL of the Node process that runs the
// kernel, where no cleanup code runs. After each, no host process below the killed one lives.
//
// ENABLED switches both tests on (they need fork, which works); MOAT_STUBS=1 runs them
// whatever it says.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { runStatic } from "../../src/userkernel/kernel/run.js";
import { descendantsOf } from "./compat-programs.js";
import { Collector } from "./helpers.js";
import { BUSYBOX_ENV, type BusyboxBundle, busyboxBundle } from "./rootfs-run.js";

/** Can the userkernel run a process tree today? */
export const ENABLED = true;

const childScript = fileURLToPath(new URL("./kill-child.js", import.meta.url));
const TREE = ["sh", "-c", "sleep 30 & sleep 30 & (sleep 30 & wait) & echo ready; wait"];
/** sh, the two sleeps, the subshell and its sleep. */
const PROCESSES = 5;

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

if (ENABLED || process.env.MOAT_STUBS === "1")
  describe("a process tree killed from outside leaves no stub", () => {
    let b: BusyboxBundle;
    before(async () => {
      b = await busyboxBundle();
    });
    after(() => b?.remove());

    test("aborting the run kills every process of the container", { timeout: 120_000 }, async () => {
      const before = descendantsOf(process.pid);
      const fresh = () => [...descendantsOf(process.pid)].filter(([p]) => !before.has(p));
      const ac = new AbortController();
      const stdout = new Collector();
      const stderr = new Collector();
      const running = runStatic({
        rootfs: b.rootfs,
        binary: TREE[0]!,
        argv: TREE,
        env: BUSYBOX_ENV,
        stdout,
        stderr,
        log: () => {},
        signal: ac.signal,
      });
      const ended = running.then((r) => {
        throw new Error(`the tree ended before it was ready: ${JSON.stringify(r)}\n${stderr.text()}`);
      });
      ended.catch(() => {});
      await Promise.race([until("the tree's ready line", () => stdout.text().includes("ready\n")), ended]);
      // Every process is traced by a stub of its own, which lives below this process.
      await until(`${PROCESSES} stubs`, () => fresh().length >= PROCESSES);
      ac.abort();
      const r = await running;
      assert.equal(r.signal, "SIGKILL");
      await until("every stub gone", () => fresh().length === 0, 10_000);
    });

    test("SIGKILL of the kernel's Node process kills every stub", { timeout: 120_000 }, async () => {
      const child = spawn(process.execPath, [childScript, b.rootfs, ...TREE], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      try {
        // The stub of sh, sh's children and the gofer, all below the child.
        let exitedEarly = false;
        child.on("exit", () => {
          exitedEarly = true;
        });
        await until(`${PROCESSES} stubs and the gofer`, () => {
          if (exitedEarly) throw new Error("the kernel's process ended before the tree was up");
          return descendantsOf(child.pid!).size >= PROCESSES + 1;
        });
        const below = descendantsOf(child.pid!);
        const exited = once(child, "exit");
        child.kill("SIGKILL");
        await exited;
        await until("every stub gone", () => [...below].every(([p, comm]) => !isSame(p, comm)), 10_000);
      } finally {
        child.kill("SIGKILL");
      }
    });
  });

/** Is `pid` still a live process named `comm` (not a reused pid)? A zombie counts as gone. */
function isSame(pid: number, comm: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const close = stat.lastIndexOf(")");
    return stat.slice(stat.indexOf("(") + 1, close) === comm && !/^[ZX]/.test(stat.slice(close + 2));
  } catch {
    return false;
  }
}
