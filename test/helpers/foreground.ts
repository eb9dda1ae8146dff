// A foreground `moat run` as a child process the test can signal, and what it leaves behind.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { mountsUnder } from "../../src/sys/mounts.js";

export const MAIN = new URL("../../src/cli/main.js", import.meta.url).pathname;

export interface Running {
  child: ChildProcess;
  /** stdout and stderr so far. */
  out(): { stdout: string; stderr: string };
  /** Resolves when it ended. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

export function startMoat(root: string, args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [MAIN, "--root", root, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve) => child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, out: () => ({ stdout, stderr }), done };
}

export function moatSync(root: string, args: string[]) {
  return spawnSync(process.execPath, [MAIN, "--root", root, ...args], { encoding: "utf8", input: "" });
}

interface RecordFile {
  id: string;
  owner: { pid: number };
  info: { status?: string };
}

/** The run records (ROOT/runs/*.json) of the moat process `pid`. */
export function recordsOf(root: string, pid: number): RecordFile[] {
  let names: string[] = [];
  try {
    names = readdirSync(path.join(root, "runs")).filter((n) => n.endsWith(".json"));
  } catch {
    return [];
  }
  const out: RecordFile[] = [];
  for (const n of names) {
    try {
      const r = JSON.parse(readFileSync(path.join(root, "runs", n), "utf8")) as RecordFile;
      if (r.owner.pid === pid) out.push(r);
    } catch {
      // being replaced
    }
  }
  return out;
}

export async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Wait until the run's container runs; its record's id. */
export async function whenRunning(root: string, r: Running, timeoutMs: number): Promise<string> {
  const rec = await until(
    "the container to run",
    () => {
      if (r.child.exitCode !== null || r.child.signalCode !== null) {
        throw new Error(`moat run ended early: ${JSON.stringify(r.out())}`);
      }
      return recordsOf(root, r.child.pid!).find((x) => x.info.status === "running");
    },
    timeoutMs,
  );
  return rec.id;
}

/** What a run may leave under ROOT: none of these should hold anything once it is reaped. */
export function leftovers(root: string): Record<string, string[]> {
  const ls = (d: string) => {
    try {
      return readdirSync(path.join(root, d));
    } catch {
      return [];
    }
  };
  return {
    bundles: ls("bundles"),
    sandboxes: ls("sandboxes"),
    runs: ls("runs"),
    leases: ls("leases"),
    mounts: mountsUnder(root),
  };
}

export const NOTHING = { bundles: [], sandboxes: [], runs: [], leases: [], mounts: [] };

/** Live (not zombie) children of this process: with PR_SET_CHILD_SUBREAPER, a dead moat's orphans. */
export function liveChildren(): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[1]) !== process.pid || f[0] === "Z") continue;
      out.push({ pid: Number(d), cmdline: readFileSync(`/proc/${d}/cmdline`, "latin1").replace(/\0/g, " ") });
    } catch {
      // gone
    }
  }
  return out;
}

/** A stack trace's frame line: none may reach the user. */
export const STACK_FRAME = /^\s+at .+[:(]/m;
