// The monitor's exec socket: a SOCK_SEQPACKET unix socket beside the control socket, one
// exec per connection. The request arrives with the process's three stdio descriptors as
// SCM_RIGHTS, which become the process's own (exec-client.ts is the caller's side); the
// answers are a "started" event with the pid and an "exit" event with the status, and a
// caller that hangs up takes its process with it. Kept apart from the control socket: it
// carries descriptors, not JSON lines, and it owns each exec from request to exit.
import * as fs from "node:fs";
import type { Stdio } from "../sandbox/types.js";
import { isMoatError, MoatError } from "../spec/errors.js";
import { accept, MSG_DONTWAIT, recvWithFds, sendWithFds, unixListen, watchReadable } from "../sys/socket.js";
import type { ExecEvent, ExecRequest } from "./exec-client.js";
import { closeQuietly, type Exec, id, log, mon, root } from "./monitor-context.js";
import { record } from "./monitor-record.js";
import { EXEC_SOCKET, socketAddress, socketPath } from "./state.js";
import { closeStdio, followWinSize, stdioOf } from "./stdio.js";

function execSend(conn: number, ev: ExecEvent): void {
  try {
    sendWithFds(conn, Buffer.from(JSON.stringify(ev)), [], MSG_DONTWAIT | 0x4000 /* MSG_NOSIGNAL */);
  } catch (e) {
    log(`exec answer lost: ${(e as Error).message}`);
  }
}

/** One exec: its stdio descriptors arrived with the request and are the process's from now on. */
async function onExec(conn: number, req: ExecRequest, fds: number[]): Promise<void> {
  const fail = (e: unknown) => {
    for (const fd of fds) closeQuietly(fd);
    execSend(conn, { ok: false, code: isMoatError(e) ? e.code : "EIO", error: (e as Error).message });
  };
  if (mon.exitStatus !== undefined || record.status === "stopped" || record.status === "created") {
    return fail(
      new MoatError("ESTATE", "cannot exec in a container that is not running (container not running)"),
    );
  }
  if (record.status === "paused")
    return fail(new MoatError("ESTATE", "cannot exec in a paused container: resume it first"));
  if (fds.length !== 3)
    return fail(new MoatError("EPROTO", `exec needs 3 stdio descriptors, got ${fds.length}`));
  if (!/^[\w.-]{1,128}$/.test(req.execId ?? "") || mon.execs.has(req.execId)) {
    return fail(new MoatError("EEXIST", `exec id "${req.execId}" is invalid or in use: pick another`));
  }
  let stdio: Stdio;
  try {
    stdio = stdioOf(fds, req.terminal);
  } catch (e) {
    return fail(e);
  }
  const x: Exec = { conn, stdio, running: false, stopWinSize: () => {} };
  mon.execs.set(req.execId, x);
  let pid: number | undefined;
  try {
    pid = (await mon.sandbox!.exec({ containerId: id, execId: req.execId, process: req.process, stdio })).pid;
  } catch (e) {
    mon.execs.delete(req.execId);
    await closeStdio(stdio);
    execSend(conn, { ok: false, code: isMoatError(e) ? e.code : "EIO", error: (e as Error).message });
    return;
  }
  x.running = true;
  log(`exec ${req.execId} started: ${req.process.args.join(" ")}`);
  if (req.terminal) {
    x.stopWinSize = followWinSize(fds[0]!, (size) => {
      mon
        .sandbox!.resize(id, size, req.execId)
        .catch((e: Error) => log(`resize ${req.execId}: ${e.message}`));
    });
  }
  execSend(conn, { ok: true, event: "started", ...(pid !== undefined ? { pid } : {}) });
  let status: number;
  try {
    status = (await mon.sandbox!.wait(id, req.execId)).status;
  } catch (e) {
    log(`wait ${req.execId}: ${(e as Error).message}`);
    status = 255;
  }
  x.running = false;
  x.stopWinSize();
  log(`exec ${req.execId} exited with status ${status}`);
  // All output is out before the caller learns the status.
  await closeStdio(stdio);
  execSend(conn, { ok: true, event: "exit", status });
  mon.execs.delete(req.execId);
}

/** Read what a connection sends: the one request, then only its hang-up. */
function serveExecConn(conn: number): void {
  let execId: string | undefined;
  let closed = false;
  const watcher = watchReadable(conn, () => {
    for (;;) {
      let msg: ReturnType<typeof recvWithFds>;
      try {
        msg = recvWithFds(conn, 1 << 20, MSG_DONTWAIT);
      } catch (e) {
        if ((e as { code?: string }).code === "EAGAIN") return;
        msg = { data: Buffer.alloc(0), fds: [], eof: true, truncated: false };
      }
      if (msg.eof) {
        if (closed) return;
        closed = true;
        watcher.stop();
        const x = execId ? mon.execs.get(execId) : undefined;
        if (x?.running && execId) {
          // The caller (the exec invocation, or the waiter whose pid it was given) is gone:
          // the process goes with it rather than running on with nobody to report to.
          log(`exec ${execId}: its caller hung up; killing it`);
          mon.sandbox!.signal(id, "SIGKILL", execId).catch(() => {});
        }
        if (!x) closeQuietly(conn);
        else void mon.sandbox!.wait(id, execId).finally(() => setTimeout(() => closeQuietly(conn), 100));
        return;
      }
      if (execId !== undefined) {
        for (const fd of msg.fds) closeQuietly(fd);
        continue; // one request per connection
      }
      let req: ExecRequest;
      try {
        req = JSON.parse(msg.data.toString("utf8")) as ExecRequest;
        if (req.op !== "exec" || !req.process?.args?.length) throw new Error("not an exec request");
      } catch (e) {
        for (const fd of msg.fds) closeQuietly(fd);
        execSend(conn, { ok: false, code: "EPROTO", error: `bad exec request: ${(e as Error).message}` });
        continue;
      }
      execId = req.execId;
      if (msg.truncated) {
        for (const fd of msg.fds) closeQuietly(fd);
        execSend(conn, { ok: false, code: "EPROTO", error: "the exec request was truncated" });
        continue;
      }
      void onExec(conn, req, msg.fds);
    }
  });
}

export function listenExec(): void {
  const full = socketPath(root, id, EXEC_SOCKET);
  fs.rmSync(full, { force: true });
  const addr = socketAddress(root, id, EXEC_SOCKET);
  let fd: number;
  try {
    fd = unixListen(addr.path);
  } finally {
    addr.release();
  }
  fs.chmodSync(full, 0o600);
  const watcher = watchReadable(fd, () => {
    for (;;) {
      let conn: number;
      try {
        conn = accept(fd);
      } catch {
        return; // EAGAIN: no more waiting
      }
      serveExecConn(conn);
    }
  });
  mon.execListener = { fd, watcher };
}
