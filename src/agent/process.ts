// One container process as the agent holds it: spawned with pipes for its stdio (a process
// with a terminal is started under the guest's moat-pty helper, which makes the pty its
// controlling terminal and takes resizes on a control pipe), its output buffered for the
// host's reads, its exit tracked (exit.ts), and its own pid found below the wrappers that
// started it. Kept apart from the launch command (launch.ts), which decides what runs, and
// from the containers' table, which decides when.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Writable } from "node:stream";
import { Code, TtrpcError } from "../ttrpc/messages.js";
import { BUSYBOX } from "./busybox.js";
import { oomKills } from "./cgroups.js";
import { exitOf, type ProcExit } from "./exit.js";
import { OutputBuffer } from "./output.js";
import { type ProcessSpec, PTY_HELPER } from "./protocol.js";

export interface Proc {
  readonly child: ChildProcess;
  readonly stdout: OutputBuffer;
  readonly stderr: OutputBuffer;
  readonly exit: Promise<ProcExit>;
  /** How many processes lie between the spawned child and the process itself. */
  readonly depth: number;
  /** Resizes the terminal (moat-pty's control pipe); absent without a terminal. */
  readonly control?: Writable;
  /** The process itself, below the busybox wrapper that started it. */
  target?: number;
}

/** Start busybox with `argv` (launch.ts's command) for the process `proc`, in `cgroup`. */
export function spawnProcess(argv: string[], proc: ProcessSpec, cgroup: string): Proc {
  // Kills counted from here on are this process's or its siblings' (exit.ts).
  const oomBefore = oomKills(cgroup);
  const child = proc.terminal
    ? spawn(PTY_HELPER, [String(proc.rows || 24), String(proc.columns || 80), "--", BUSYBOX, ...argv], {
        env: {},
        stdio: ["pipe", "pipe", "pipe", "pipe"],
      })
    : spawn(BUSYBOX, argv, { env: {}, stdio: ["pipe", "pipe", "pipe"] });
  child.stdin!.on("error", () => {}); // a process that exits before reading its stdin
  const control = proc.terminal ? (child.stdio[3] as Writable) : undefined;
  control?.on("error", () => {});
  const exit = exitOf(child, cgroup, oomBefore);
  return {
    child,
    stdout: new OutputBuffer(child.stdout!),
    stderr: new OutputBuffer(child.stderr!),
    exit,
    depth: proc.terminal ? 2 : 1,
    ...(control ? { control } : {}),
  };
}

/**
 * The pid under the busybox wrapper (unshare's or nsenter's child; with a terminal,
 * one level further below moat-pty), once it exists.
 */
export async function targetPid(p: Proc): Promise<number> {
  if (p.target !== undefined) return p.target;
  let pid = p.child.pid;
  if (pid === undefined) throw new TtrpcError(Code.INTERNAL, "the process could not be started");
  let level = 0;
  for (let i = 0; i < 2000; i++) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return pid;
    let children = "";
    try {
      children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    } catch {
      return pid;
    }
    if (children !== "") {
      pid = Number(children.split(/\s+/)[0]);
      if (++level === p.depth) {
        p.target = pid;
        return pid;
      }
      continue;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new TtrpcError(Code.DEADLINE_EXCEEDED, "the process did not start within 10 s");
}
