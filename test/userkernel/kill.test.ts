// Killing the kernel's host process (SIGKILL: no cleanup code runs) leaves nothing behind:
// not the stubs that held its processes, not the gofer; nor does killing a sandbox from outside.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { alive } from "./helpers.js";
import { type BusyboxBundle, busyboxBundle, runIn } from "./rootfs-run.js";

const childScript = fileURLToPath(new URL("./kill-child.js", import.meta.url));

/** Host processes whose parent is `ppid`, with their comm. */
function childrenOf(ppid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "latin1");
      const close = stat.lastIndexOf(")");
      const fields = stat.slice(close + 2).split(" ");
      if (Number(fields[1]) === ppid) out.set(Number(name), stat.slice(stat.indexOf("(") + 1, close));
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}

function commOf(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "latin1").trim();
  } catch {
    return undefined;
  }
}

async function until(cond: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

describe("SIGKILL of the kernel's process", () => {
  let b: BusyboxBundle;
  before(async () => {
    b = await busyboxBundle();
  });
  after(() => b.remove());

  // [argv, how many host children it makes: stubs (one per process) and the gofer]
  for (const [argv, least] of [
    [["sleep", "30"], 2],
    [["cat"], 2],
    [["sh", "-c", "sleep 30 | sleep 30"], 4],
  ] as Array<[string[], number]>) {
    it(`leaves no stub and no gofer (${argv.join(" ")})`, async () => {
      const child = spawn(process.execPath, [childScript, b.rootfs, ...argv], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      try {
        let out = "";
        child.stdout.setEncoding("utf8");
        child.stdout.on("data", (s: string) => {
          out += s;
        });
        assert.ok(await until(() => out.includes("\n"), 20_000), "the program did not start");
        const stub = (JSON.parse(out.split("\n")[0]!) as { stub: number }).stub;
        // Running, and waiting inside the kernel: its children are the stub and the gofer.
        await new Promise((r) => setTimeout(r, 300));
        assert.ok(
          await until(() => childrenOf(child.pid!).size >= least, 20_000),
          "its processes did not start",
        );
        const kids = childrenOf(child.pid!);
        assert.ok(kids.has(stub), `the stub ${stub} is not among ${[...kids.keys()]}`);
        assert.ok(kids.size >= least, `expected the stubs and the gofer, got ${[...kids.values()]}`);
        assert.ok(await alive(stub));
        const exited = once(child, "exit");
        child.kill("SIGKILL");
        await exited;
        const gone = async () => {
          for (const [pid, comm] of kids) if ((await alive(pid)) && commOf(pid) === comm) return false;
          return true;
        };
        assert.ok(await until(gone, 10_000), `left behind: ${[...kids].map(([p, c]) => `${p} ${c}`)}`);
        assert.equal(childrenOf(child.pid!).size, 0);
      } finally {
        child.kill("SIGKILL");
      }
    });
  }
});

describe("a sandbox killed from outside", () => {
  let b: BusyboxBundle;
  before(async () => {
    b = await busyboxBundle();
  });
  after(() => b.remove());

  it("kills every process of it, and every stub goes", async () => {
    const ac = new AbortController();
    const before = new Set(childrenOf(process.pid).keys());
    const ours = () => [...childrenOf(process.pid)].filter(([pid]) => !before.has(pid));
    const run = runIn(b.rootfs, ["sh", "-c", "sleep 30 | sleep 30; echo never"], { signal: ac.signal });
    // sh and its two sleeps: three stubs, and the gofer.
    assert.ok(
      await until(() => ours().length >= 4, 20_000),
      `started: ${ours().map(([p, c]) => `${p} ${c}`)}`,
    );
    ac.abort();
    const r = await run;
    assert.equal(r.signal, "SIGKILL");
    assert.equal(r.stdout, "");
    assert.deepEqual(ours(), []);
  });
});
