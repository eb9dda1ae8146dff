// The caller's side of exec: the process's stdio descriptors travel to the container's
// monitor with SCM_RIGHTS over its SOCK_SEQPACKET exec socket (Node's net module cannot
// attach descriptors), so the exec'd process writes straight to the caller's pipes, files or
// terminal, as runc's exec does. One connection per exec: the request with the descriptors,
// then a "started" and an "exit" message. A connection that closes before "exit" tells the
// monitor the caller is gone, and the monitor kills the process.
import { spawn } from "node:child_process";
import writeFileAtomic from "write-file-atomic";
import { MoatError } from "../spec/errors.js";
import type { Process } from "../spec/runtime.js";
import { closePtyFd, type Pty } from "../sys/pty.js";
import { readReport } from "../sys/report.js";
import {
  closeFd,
  MSG_DONTWAIT,
  recvWithFds,
  sendWithFds,
  unixConnect,
  watchReadable,
} from "../sys/socket.js";
import { containerPty, sendConsole } from "./console.js";
import { reportedError, request } from "./monitor.js";
import { EXEC_SOCKET, socketAddress } from "./state.js";

const EXEC_MAIN = new URL("./exec-main.js", import.meta.url).pathname;

/** The request; its message carries the process's stdin, stdout and stderr as SCM_RIGHTS. */
export interface ExecRequest {
  op: "exec";
  execId: string;
  process: Process;
  /** The descriptors are a pty's slave: the process gets a terminal. */
  terminal: boolean;
}

/** What the monitor answers: "started" once the process runs, "exit" with its status, or an error. */
export interface ExecEvent {
  ok: boolean;
  event?: "started" | "exit";
  pid?: number;
  status?: number;
  error?: string;
  code?: string;
}

export interface ExecHandle {
  started: Promise<{ pid?: number }>;
  /** The shell-style exit status. */
  exited: Promise<number>;
}

/** Send one exec request with `fds` as the process's stdio, and follow it until the process ends. */
export function openExec(root: string, id: string, req: ExecRequest, fds: number[]): ExecHandle {
  let addr: { path: string; release(): void };
  let sock: number;
  try {
    addr = socketAddress(root, id, EXEC_SOCKET);
  } catch {
    throw new MoatError("ESTATE", "container not running");
  }
  try {
    sock = unixConnect(addr.path);
  } catch (e) {
    throw new MoatError(
      "ESTATE",
      `container not running (its monitor does not answer: ${(e as Error).message})`,
    );
  } finally {
    addr.release();
  }
  sendWithFds(sock, Buffer.from(JSON.stringify(req)), fds);
  let onStarted!: (v: { pid?: number }) => void;
  let onStartFail!: (e: Error) => void;
  let onExit!: (status: number) => void;
  let onExitFail!: (e: Error) => void;
  const started = new Promise<{ pid?: number }>((res, rej) => {
    onStarted = res;
    onStartFail = rej;
  });
  const exited = new Promise<number>((res, rej) => {
    onExit = res;
    onExitFail = rej;
  });
  started.catch(() => {});
  exited.catch(() => {});
  let open = true;
  const finish = (err?: Error) => {
    if (!open) return;
    open = false;
    watcher.stop();
    closeFd(sock);
    const gone =
      err ?? new MoatError("EIO", `the monitor of container ${id} went away before exec ${req.execId} ended`);
    onStartFail(gone);
    onExitFail(gone);
  };
  const watcher = watchReadable(sock, () => {
    while (open) {
      let msg: ReturnType<typeof recvWithFds>;
      try {
        msg = recvWithFds(sock, 65536, MSG_DONTWAIT);
      } catch (e) {
        if ((e as { code?: string }).code === "EAGAIN") return;
        finish(e as Error);
        return;
      }
      for (const fd of msg.fds) closeFd(fd);
      if (msg.eof) {
        finish();
        return;
      }
      let ev: ExecEvent;
      try {
        ev = JSON.parse(msg.data.toString("utf8")) as ExecEvent;
      } catch {
        finish(new MoatError("EPROTO", "the monitor sent an exec answer that is not JSON"));
        return;
      }
      if (!ev.ok) {
        finish(new MoatError((ev.code ?? "EIO") as "EIO", ev.error ?? "exec failed"));
        return;
      }
      if (ev.event === "started") onStarted(ev.pid !== undefined ? { pid: ev.pid } : {});
      if (ev.event === "exit") {
        onExit(ev.status ?? 255);
        finish();
        return;
      }
    }
  });
  return { started, exited };
}

/** Signals a waiting exec caller passes on to the process (as runc exec forwards them). */
export const FORWARDED_SIGNALS: NodeJS.Signals[] = [
  "SIGINT",
  "SIGTERM",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
];

/** Forward the FORWARDED_SIGNALS this process gets to the exec; returns the undo. */
export function forwardSignals(root: string, id: string, execId: string): () => void {
  const forward = (sig: NodeJS.Signals) => {
    request(root, id, { op: "kill", signal: sig, execId }).catch(() => {});
  };
  for (const s of FORWARDED_SIGNALS) process.on(s, forward);
  return () => {
    for (const s of FORWARDED_SIGNALS) process.off(s, forward);
  };
}

/**
 * Start the detached exec's waiter: a child in its own session, holding the process's stdio,
 * that sends the request and exits with the process's status. Resolves with its pid once the
 * process runs (fd 3 of the waiter is a pipe used only for that report).
 */
async function spawnWaiter(root: string, id: string, req: ExecRequest, fds: number[]): Promise<number> {
  const child = spawn(process.execPath, [EXEC_MAIN, root, id, JSON.stringify(req)], {
    detached: true,
    stdio: [fds[0]!, fds[1]!, fds[2]!, "pipe"],
  });
  const pid = child.pid;
  if (pid === undefined)
    throw new MoatError("EIO", "cannot start the exec waiter: node could not be spawned");
  const { line } = await readReport(child);
  if (line === "ok") return pid;
  throw reportedError(line, `the exec waiter ended before exec ${req.execId} started`);
}

export interface ExecViaMonitor {
  execId: string;
  process: Process;
  stdio: [number, number, number];
  detach: boolean;
  consoleSocket?: string;
  pidFile?: string;
  /** Without detach: pass SIGINT, SIGTERM, ... this process gets on to the exec'd process. */
  forwardSignals?: boolean;
}

/** Run an exec through the container's monitor; see api.ts execInContainer. */
export async function execViaMonitor(
  root: string,
  id: string,
  o: ExecViaMonitor,
): Promise<{ execId: string; status?: number; pid?: number }> {
  let pty: Pty | undefined;
  let fds: number[] = o.stdio;
  if (o.consoleSocket) {
    pty = containerPty(o.process.consoleSize);
    try {
      sendConsole(o.consoleSocket, pty);
    } catch (e) {
      closePtyFd(pty.master);
      closePtyFd(pty.slave);
      throw e;
    }
    closePtyFd(pty.master);
    fds = [pty.slave, pty.slave, pty.slave];
  }
  const req: ExecRequest = { op: "exec", execId: o.execId, process: o.process, terminal: Boolean(pty) };
  try {
    if (o.detach) {
      const pid = await spawnWaiter(root, id, req, fds);
      if (o.pidFile) await writeFileAtomic(o.pidFile, String(pid));
      return { execId: o.execId, pid };
    }
    const h = openExec(root, id, req, fds);
    const undo = o.forwardSignals ? forwardSignals(root, id, o.execId) : () => {};
    try {
      const { pid } = await h.started;
      if (o.pidFile) await writeFileAtomic(o.pidFile, String(pid ?? process.pid));
      if (pty) {
        closePtyFd(pty.slave);
        pty = undefined;
      }
      return { execId: o.execId, status: await h.exited };
    } finally {
      undo();
    }
  } finally {
    if (pty) closePtyFd(pty.slave);
  }
}
