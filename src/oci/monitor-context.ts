// What every part of the per-container monitor shares: who it is (its argv: the root, the
// container's id, the isolation asked for, debug, whether the container has a terminal),
// where it says what happens (its log, and the one report to the CLI that spawned it), and
// the state its parts hand one another (the sandbox, the spec, the exit, the waiters, the
// execs, the listening sockets). Kept apart so the lifecycle, the control socket and the
// exec socket each import it and none of them imports another: the state has one home.
// argv: ROOT ID ISOLATION("" = choose) DEBUG("1"|"0") TTY("tty"|"")
import * as fs from "node:fs";
import type * as net from "node:net";
import type { Sandbox } from "../sandbox/sandbox.js";
import type { Signal } from "../sandbox/signals.js";
import type { Stdio } from "../sandbox/types.js";
import type { Spec } from "../spec/runtime.js";
import { closeFd, type FdWatcher } from "../sys/socket.js";
import { logPath } from "./state.js";

export const [root = "", id = "", isolationArg = "", debugArg = "0", ttyArg = ""] = process.argv.slice(2);
const logFd = openLog();

function openLog(): number {
  try {
    return fs.openSync(logPath(root, id), "a", 0o600);
  } catch {
    return -1;
  }
}

export function log(msg: string): void {
  if (logFd < 0) return;
  try {
    fs.writeSync(logFd, `${new Date().toISOString()} monitor[${process.pid}] ${msg}\n`);
  } catch {
    // the log is best effort; the state file is what counts
  }
}

export function report(line: string): void {
  try {
    fs.writeSync(3, `${line}\n`);
    fs.closeSync(3);
  } catch {
    // the CLI that spawned us is gone: the state file still says what happened
  }
}

export function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // closed already
  }
}

export interface Exec {
  conn: number;
  stdio: Stdio;
  running: boolean;
  stopWinSize: () => void;
}

export interface MonitorState {
  sandbox: Sandbox | undefined;
  /** Read from the bundle once the record is (monitor-main.ts), before anything else uses it. */
  spec: Spec;
  exitStatus: number | undefined;
  /** The exit is in state.json: only then is a waiter told it (it may read the record next). */
  exitRecorded: boolean;
  readonly waiters: net.Socket[];
  server: net.Server | undefined;
  execListener: { fd: number; watcher: FdWatcher } | undefined;
  stopInitWinSize: () => void;
  /** Signals sent while paused (other than KILL): delivered on resume, as a frozen process gets them. */
  readonly pending: Array<{ signal: Signal; execId?: string; all?: boolean }>;
  readonly execs: Map<string, Exec>;
}

export const mon: MonitorState = {
  sandbox: undefined,
  spec: undefined as unknown as Spec,
  exitStatus: undefined,
  exitRecorded: false,
  waiters: [],
  server: undefined,
  execListener: undefined,
  stopInitWinSize: () => {},
  pending: [],
  execs: new Map(),
};
