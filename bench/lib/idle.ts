// One idle sandbox per call, for the memory and density scenarios: a runc container
// running `sleep 1000` (detached, so runc itself is gone), or a moat sandbox held by a
// child Node process (bench/lib/idle-sandbox.ts) with `cat` waiting on stdin. Each knows
// every host process it consists of, and stopping it reports any that outlived it.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { alive, commName, descendants } from "./pss.js";
import { ociRunArgv } from "./subjects.js";
import type { BenchContext } from "./types.js";

const exec = promisify(execFile);
const IDLE_SCRIPT = fileURLToPath(new URL("./idle-sandbox.js", import.meta.url));

/** vm-template: a vm sandbox resumed from a VM template (MOAT_VM_TEMPLATE=1). */
export type IdleKind = "runc" | "userkernel" | "vm" | "vm-template";

export interface IdleSandbox {
  /** Wall time from asking for the sandbox to its container running, ms. */
  startMs: number;
  /** Every host process of the sandbox right now. */
  pids(): number[];
  /** Ends it; returns "comm(pid)" for each of its processes still alive afterwards. */
  stop(): Promise<string[]>;
}

let count = 0;

export async function startIdle(
  ctx: BenchContext,
  kind: IdleKind,
  runcBundle?: string,
): Promise<IdleSandbox> {
  const id = `bench-idle-${process.pid}-${++count}`;
  if (kind === "runc") {
    if (!runcBundle) throw new Error("runc needs a bundle running sleep");
    return startRunc(ctx, runcBundle, id);
  }
  return startMoat(ctx, kind, id);
}

async function startRunc(ctx: BenchContext, bundleDir: string, id: string): Promise<IdleSandbox> {
  const argv = ociRunArgv(ctx, "runc", bundleDir, id);
  const runc = argv.slice(0, 3);
  const t0 = performance.now();
  // -d: runc returns once the container runs; its stdio goes to /dev/null, not to our pipes.
  await new Promise<void>((resolve, reject) => {
    const p = spawn(argv[0]!, [...argv.slice(1, 4), "-d", ...argv.slice(4)], { stdio: "ignore" });
    p.on("error", reject);
    p.on("exit", (c) => (c === 0 ? resolve() : reject(new Error(`runc run -d exited with ${c}`))));
  });
  const startMs = performance.now() - t0;
  const state = JSON.parse((await exec(runc[0]!, [...runc.slice(1), "state", id])).stdout) as { pid: number };
  const pid = state.pid;
  return {
    startMs,
    pids: () => [pid, ...descendants(pid)],
    async stop() {
      const before = [pid, ...descendants(pid)];
      await exec(runc[0]!, [...runc.slice(1), "kill", id, "KILL"]).catch(() => {});
      await exec(runc[0]!, [...runc.slice(1), "delete", "-f", id]);
      return leftovers(before);
    },
  };
}

async function startMoat(
  ctx: BenchContext,
  kind: "userkernel" | "vm" | "vm-template",
  id: string,
): Promise<IdleSandbox> {
  const iso = kind === "vm-template" ? "vm" : kind;
  const stateDir = path.join(ctx.work, "idle", id);
  await mkdir(stateDir, { recursive: true });
  const t0 = performance.now();
  const child = spawn(process.execPath, [IDLE_SCRIPT, iso, ctx.root, stateDir, id], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, MOAT_VM_TEMPLATE: kind === "vm-template" ? "1" : "0" },
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    stderr = (stderr + d).slice(-2000);
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  try {
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`moat ${iso} sandbox not ready after 180 s`)), 180_000);
      child.stdout!.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        if (out.includes("ready\n")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("error", reject);
      exited.then((c) => {
        clearTimeout(timer);
        reject(new Error(`moat ${iso} sandbox ended with ${c} before it was ready: ${stderr.trim()}`));
      });
    });
  } catch (e) {
    await kill(child);
    throw e;
  }
  const startMs = performance.now() - t0;
  const pid = child.pid!;
  return {
    startMs,
    pids: () => [pid, ...descendants(pid)],
    async stop() {
      const before = [pid, ...descendants(pid)];
      child.stdin!.end();
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), 60_000);
        }),
      ]);
      clearTimeout(timer);
      if (!done) await kill(child);
      await delay(200);
      const left = leftovers(before);
      for (const p of before) if (alive(p)) process.kill(p, "SIGKILL");
      return left;
    },
  };
}

async function kill(child: ChildProcess): Promise<void> {
  const all = [child.pid!, ...descendants(child.pid!)];
  for (const p of all.reverse()) {
    try {
      process.kill(p, "SIGKILL");
    } catch {}
  }
  await delay(200);
}

function leftovers(pids: number[]): string[] {
  return pids.filter(alive).map((p) => `${commName(p)}(${p})`);
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
