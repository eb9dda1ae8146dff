// The CLI's side of the per-container monitor: start one (detached, in its own session, with
// the caller's stdio as the container's), talk to it over its unix socket, and find and kill
// it (and everything in its session) however it was left.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import type { ContainerStats } from "../sandbox/types.js";
import { MoatError } from "../spec/errors.js";
import type { ConsoleSize } from "../spec/runtime.js";
import { closePtyFd } from "../sys/pty.js";
import { readReport } from "../sys/report.js";
import { containerPty, sendConsole } from "./console.js";
import { containerDir, logPath, socketAddress } from "./state.js";

const MONITOR_MAIN = new URL("./monitor-main.js", import.meta.url).pathname;

export interface MonitorRequest {
  op: "start" | "kill" | "state" | "wait" | "pause" | "resume" | "stats";
  signal?: string;
  /** kill: every process of the container (the init and every exec). */
  all?: boolean;
  /** kill: this exec's process instead of the init. */
  execId?: string;
}

export interface MonitorReply {
  ok: boolean;
  error?: string;
  code?: string;
  pid?: number;
  status?: number;
  /** stats: the container's resource use, from Sandbox.stats. */
  stats?: ContainerStats;
}

/**
 * Spawn the monitor and wait until it reports the container created (or failed). Its fd 3 is
 * a pipe used only for that report, so a monitor that dies early is noticed at once.
 */
export async function spawnMonitor(opts: {
  root: string;
  id: string;
  isolation?: string;
  debug?: boolean;
  /** The container's stdio (default: ours, as runc hands the caller's fds 0-2 to the container). */
  stdio?: [number, number, number];
  /** The container gets a pty whose master is sent to this console socket once it is created. */
  consoleSocket?: string;
  /** The pty's initial size (process.consoleSize). */
  consoleSize?: ConsoleSize;
}): Promise<number> {
  const pty = opts.consoleSocket ? containerPty(opts.consoleSize) : undefined;
  const stdio: [number, number, number] = pty ? [pty.slave, pty.slave, pty.slave] : (opts.stdio ?? [0, 1, 2]);
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(
      process.execPath,
      [MONITOR_MAIN, opts.root, opts.id, opts.isolation ?? "", opts.debug ? "1" : "0", pty ? "tty" : ""],
      { detached: true, stdio: [...stdio, "pipe"] },
    );
  } finally {
    if (pty) closePtyFd(pty.slave);
  }
  try {
    const pid = await reportOf(child, opts);
    if (pty) sendConsole(opts.consoleSocket!, pty);
    return pid;
  } finally {
    if (pty) closePtyFd(pty.master);
  }
}

async function reportOf(
  child: ReturnType<typeof spawn>,
  opts: { root: string; id: string },
): Promise<number> {
  const pid = child.pid;
  if (pid === undefined)
    throw new MoatError("EIO", "cannot start the container monitor: node could not be spawned");
  const { line, exited } = await readReport(child);
  if (line === "ok") return pid;
  let tail = "";
  try {
    tail = fs.readFileSync(logPath(opts.root, opts.id), "utf8").trim().split("\n").slice(-3).join(" | ");
  } catch {
    // no log yet
  }
  const how = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 200))]);
  throw reportedError(
    line,
    `the container monitor ended (exit ${String(how)}) before the container was created${tail ? `: ${tail}` : ""}: run with --debug and try again`,
  );
}

/** The error a child reported as JSON ({error, code}), or `fallback` when it reported none. */
export function reportedError(line: string, fallback: string): MoatError {
  let message = fallback;
  let code = "EIO";
  try {
    const r = JSON.parse(line) as { error?: string; code?: string };
    if (r.error) message = r.error;
    if (r.code) code = r.code;
  } catch {
    // no report: the fallback says where to look
  }
  return new MoatError(code as "EIO", message);
}

/** One request, one reply. Rejects with ECONNREFUSED when no monitor listens any more. */
export function request(root: string, id: string, req: MonitorRequest): Promise<MonitorReply> {
  return new Promise((resolve, reject) => {
    let addr: { path: string; release(): void };
    try {
      addr = socketAddress(root, id);
    } catch (e) {
      reject(
        new MoatError("ECONNREFUSED", `the monitor of container ${id} is gone (${(e as Error).message})`),
      );
      return;
    }
    const sock = net.connect(addr.path);
    let buf = "";
    let done = false;
    sock.setEncoding("utf8");
    sock.on("connect", () => {
      addr.release();
      sock.write(`${JSON.stringify(req)}\n`);
    });
    sock.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0 && !done) {
        done = true;
        sock.end();
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as MonitorReply);
        } catch (e) {
          reject(e);
        }
      }
    });
    sock.on("error", (e: NodeJS.ErrnoException) => {
      addr.release();
      if (done) return;
      done = true;
      reject(
        new MoatError("ECONNREFUSED", `the monitor of container ${id} is gone (${e.code ?? e.message})`),
      );
    });
    sock.on("close", () => {
      addr.release();
      if (done) return;
      done = true;
      reject(new MoatError("ECONNREFUSED", `the monitor of container ${id} hung up without an answer`));
    });
  });
}

function procArgv(pid: string): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0");
  } catch {
    return [];
  }
}

function sessionOf(pid: string): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return f[0] === "Z" ? undefined : Number(f[3]);
  } catch {
    return undefined;
  }
}

/**
 * Every live process that belongs to this container: its monitor(s), found by command line
 * (so even one whose pid never reached the state file), and everything in their sessions
 * (the monitor is a session leader: stub, gofer and qemu stay in its session).
 */
export function containerProcesses(root: string, id: string, knownMonitor?: number): number[] {
  const dir = containerDir(root, id);
  const entries = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  const monitors = new Set<number>();
  for (const p of entries) {
    const argv = procArgv(p);
    if (argv[1] === MONITOR_MAIN && argv[2] && containerDir(argv[2], id) === dir && argv[3] === id) {
      monitors.add(Number(p));
    }
  }
  const out = new Set<number>([...monitors]);
  // A session id outlives its leader and is never reused while a member lives, so members of
  // the recorded monitor's session are ours even after the monitor itself was killed.
  const sessions = new Set<number>([...monitors, ...(knownMonitor ? [knownMonitor] : [])]);
  for (const p of entries) {
    const sid = sessionOf(p);
    if (sid !== undefined && sessions.has(sid) && (Number(p) !== knownMonitor || monitors.has(Number(p)))) {
      out.add(Number(p));
    }
  }
  return [...out].filter((p) => p !== process.pid);
}

/** SIGKILL every process of the container and wait (up to 10 s) until none is alive. */
export async function killContainerProcesses(root: string, id: string, knownMonitor?: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pids = containerProcesses(root, id, knownMonitor);
    if (pids.length === 0) return;
    for (const p of pids) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // already gone
      }
    }
    if (Date.now() > deadline) {
      throw new MoatError(
        "EBUSY",
        `processes ${pids.join(", ")} of container ${id} survive SIGKILL: check them with ps`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
