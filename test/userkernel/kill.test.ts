// Killing the kernel's host process (SIGKILL: no cleanup code runs) leaves nothing behind:
// not the stub that held the program, not the gofer.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { alive } from "./helpers.js";
import { type BusyboxBundle, busyboxBundle } from "./rootfs-run.js";

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

  for (const argv of [["sleep", "30"], ["cat"]]) {
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
        const kids = childrenOf(child.pid!);
        assert.ok(kids.has(stub), `the stub ${stub} is not among ${[...kids.keys()]}`);
        assert.ok(kids.size >= 2, `expected the stub and the gofer, got ${[...kids.values()]}`);
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
