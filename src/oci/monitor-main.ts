// The per-container monitor: a detached process that owns one Sandbox for the life of one
// container, because a sandbox lives exactly as long as the process that created it. Its fds
// 0-2 are the container's stdio (a pty's slave when the container has a terminal); it
// reports on fd 3 once the container is created, then serves JSON-line requests (start,
// kill, state, wait, pause, resume) on the state directory's socket and execs (with their
// stdio as SCM_RIGHTS descriptors) on a second, SOCK_SEQPACKET socket, and exits with the
// container's status once it has recorded it.
// argv: ROOT ID ISOLATION("" = choose) DEBUG("1"|"0") TTY("tty"|"")
import { readBundleSpec } from "../image/bundle.js";
import "../sys/threadpool.js";
import * as fs from "node:fs";
import * as net from "node:net";
import { chooseIsolation, selectBackend } from "../isolation/index.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { parseSignal, type Signal, SignalNumbers } from "../sandbox/signals.js";
import type { SandboxConfig, Stdio } from "../sandbox/types.js";
import { isMoatError, MoatError } from "../spec/errors.js";
import type { Spec } from "../spec/runtime.js";
import {
  accept,
  closeFd,
  type FdWatcher,
  MSG_DONTWAIT,
  recvWithFds,
  sendWithFds,
  unixListen,
  watchReadable,
} from "../sys/socket.js";
import type { ExecEvent, ExecRequest } from "./exec-client.js";
import { runHooks } from "./hooks.js";
import type { MonitorReply, MonitorRequest } from "./monitor.js";
import { freeze, thaw } from "./pause.js";
import { sandboxSizing } from "./sizing.js";
import {
  type ContainerRecord,
  EXEC_SOCKET,
  logPath,
  processStart,
  readRecord,
  sandboxDir,
  socketAddress,
  socketPath,
  toState,
  updateRecord,
} from "./state.js";
import { closeStdio, followWinSize, stdioOf } from "./stdio.js";

const [root = "", id = "", isolationArg = "", debugArg = "0", ttyArg = ""] = process.argv.slice(2);
const logFd = openLog();

function openLog(): number {
  try {
    return fs.openSync(logPath(root, id), "a", 0o600);
  } catch {
    return -1;
  }
}

function log(msg: string): void {
  if (logFd < 0) return;
  try {
    fs.writeSync(logFd, `${new Date().toISOString()} monitor[${process.pid}] ${msg}\n`);
  } catch {
    // the log is best effort; the state file is what counts
  }
}

function report(line: string): void {
  try {
    fs.writeSync(3, `${line}\n`);
    fs.closeSync(3);
  } catch {
    // the CLI that spawned us is gone: the state file still says what happened
  }
}

let sandbox: Sandbox | undefined;
let record: ContainerRecord;
let spec: Spec;
let exitStatus: number | undefined;
const waiters: net.Socket[] = [];
let server: net.Server | undefined;
let execListener: { fd: number; watcher: FdWatcher } | undefined;
let stopInitWinSize: () => void = () => {};
/** Signals sent while paused (other than KILL): delivered on resume, as a frozen process gets them. */
const pending: Array<{ signal: Signal; execId?: string }> = [];

interface Exec {
  conn: number;
  stdio: Stdio;
  running: boolean;
  stopWinSize: () => void;
}
const execs = new Map<string, Exec>();

function send(sock: net.Socket, reply: MonitorReply): void {
  sock.end(`${JSON.stringify(reply)}\n`);
}

function errorReply(e: unknown): MonitorReply {
  return {
    ok: false,
    code: isMoatError(e) ? e.code : "EIO",
    error: e instanceof Error ? e.message : String(e),
  };
}

async function setStatus(change: Partial<ContainerRecord>): Promise<void> {
  record = await updateRecord(root, id, (r) => ({ ...r, ...change }));
}

/** The container ended (or never ran): record it, answer waiters, release the sandbox, exit. */
async function finish(status: number, oomKilled = false): Promise<never> {
  if (exitStatus === undefined) {
    exitStatus = status;
    log(`container exited with status ${status}`);
    stopInitWinSize();
    if (record.status === "paused" && record.isolation) {
      // A frozen VM answers nothing: thaw it so destroy can end it cleanly.
      try {
        thaw(record.isolation);
      } catch {
        // destroy kills it anyway
      }
    }
    try {
      await setStatus({
        status: "stopped",
        exitStatus: status,
        exitedAt: new Date().toISOString(),
        ...(oomKilled ? { oomKilled } : {}),
      });
    } catch (e) {
      log(`cannot record the exit: ${(e as Error).message}`);
    }
    for (const w of waiters.splice(0)) send(w, { ok: true, status });
    await sandbox?.destroy().catch((e: Error) => log(`destroy: ${e.message}`));
    // Execs die with their container; their callers learn it from the closed connection.
    for (const [, x] of execs) {
      x.stopWinSize();
      await closeStdio(x.stdio);
      closeQuietly(x.conn);
    }
    execs.clear();
    server?.close();
    if (execListener) {
      execListener.watcher.stop();
      closeQuietly(execListener.fd);
    }
    fs.rmSync(socketPath(root, id), { force: true });
    fs.rmSync(socketPath(root, id, EXEC_SOCKET), { force: true });
  }
  // Give the replies a moment to leave before the process goes.
  await new Promise((r) => setTimeout(r, 50));
  process.exit(status & 0xff);
}

function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // closed already
  }
}

async function onStart(): Promise<MonitorReply> {
  if (record.status === "stopped" || exitStatus !== undefined) {
    throw new MoatError("ESTATE", "cannot start a container that has stopped");
  }
  if (record.status === "running" || record.status === "paused")
    throw new MoatError("ESTATE", "cannot start an already running container");
  if (record.status !== "created")
    throw new MoatError("ESTATE", `cannot start a container in the ${record.status} state`);
  const sb = sandbox!;
  try {
    await runHooks(spec.hooks, "startContainer", toState(record, "created"));
  } catch (e) {
    log(`startContainer hook failed: ${(e as Error).message}`);
    void finish(255);
    throw e;
  }
  let pid: number | undefined;
  try {
    pid = (await sb.start(id)).pid;
  } catch (e) {
    void finish(255);
    throw e;
  }
  await setStatus({ status: "running", ...(pid !== undefined ? { containerPid: pid } : {}) });
  if (ttyArg === "tty") {
    stopInitWinSize = followWinSize(0, (size) => {
      sb.resize(id, size).catch((e: Error) => log(`resize: ${e.message}`));
    });
  }
  sb.wait(id).then(
    (s) => finish(s.status, s.oomKilled),
    (e: Error) => {
      log(`wait failed: ${e.message}`);
      return finish(255);
    },
  );
  // The spec: a failing poststart hook is logged, and the lifecycle goes on.
  await runHooks(spec.hooks, "poststart", toState(record, "running")).catch((e: Error) =>
    log(`warning: ${e.message}`),
  );
  return { ok: true, pid: process.pid };
}

async function deliver(sig: Signal, execId?: string): Promise<void> {
  await sandbox!.signal(id, sig, execId);
}

async function onKill(req: MonitorRequest): Promise<MonitorReply> {
  const sig = parseSignal(req.signal ?? "TERM");
  if (exitStatus !== undefined || record.status === "stopped")
    throw new MoatError("ESTATE", "container not running");
  if (req.execId) {
    const x = execs.get(req.execId);
    if (!x?.running) throw new MoatError("ENOENT", `no such process: exec ${req.execId} is not running`);
  }
  if (record.status === "created") {
    // A created container's process has not run: any signal that would end it ends it now.
    void finish(128 + SignalNumbers[sig]);
    return { ok: true };
  }
  const targets: Array<string | undefined> = req.all
    ? [...[...execs].filter(([, x]) => x.running).map(([e]) => e), undefined]
    : [req.execId];
  if (record.status === "paused") {
    if (sig !== "SIGKILL") {
      for (const t of targets) pending.push({ signal: sig, ...(t ? { execId: t } : {}) });
      return { ok: true };
    }
    // SIGKILL ends even a frozen process: thaw the sandbox so the kill can reach it.
    thaw(record.isolation ?? "");
    await setStatus({ status: "running" });
  }
  for (const t of targets) {
    try {
      await deliver(sig, t);
    } catch (e) {
      // With --all, an exec that ended meanwhile is no failure.
      if (!req.all || t === undefined) throw e;
    }
  }
  return { ok: true };
}

async function onPause(): Promise<MonitorReply> {
  if (exitStatus !== undefined || record.status === "stopped")
    throw new MoatError("ESTATE", "container not running");
  if (record.status === "paused") throw new MoatError("ESTATE", "container already paused");
  if (record.status !== "running") throw new MoatError("ESTATE", "container not running");
  freeze(record.isolation ?? "");
  await setStatus({ status: "paused" });
  log("paused");
  return { ok: true };
}

async function onResume(): Promise<MonitorReply> {
  if (record.status !== "paused") throw new MoatError("ESTATE", "container not paused");
  thaw(record.isolation ?? "");
  await setStatus({ status: "running" });
  log("resumed");
  for (const p of pending.splice(0)) {
    await deliver(p.signal, p.execId).catch((e: Error) => log(`signal after resume: ${e.message}`));
  }
  return { ok: true };
}

async function handle(sock: net.Socket, line: string): Promise<void> {
  let req: MonitorRequest;
  try {
    req = JSON.parse(line) as MonitorRequest;
  } catch {
    return send(sock, { ok: false, code: "EPROTO", error: "the monitor got a request that is not JSON" });
  }
  try {
    switch (req.op) {
      case "start":
        return send(sock, await onStart());
      case "kill":
        return send(sock, await onKill(req));
      case "pause":
        return send(sock, await onPause());
      case "resume":
        return send(sock, await onResume());
      case "state":
        return send(sock, { ok: true, ...(exitStatus !== undefined ? { status: exitStatus } : {}) });
      case "wait":
        if (exitStatus !== undefined) return send(sock, { ok: true, status: exitStatus });
        waiters.push(sock);
        return;
      default:
        return send(sock, {
          ok: false,
          code: "EINVAL",
          error: `unknown monitor request "${String(req.op)}"`,
        });
    }
  } catch (e) {
    send(sock, errorReply(e));
  }
}

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
  if (exitStatus !== undefined || record.status === "stopped" || record.status === "created") {
    return fail(
      new MoatError("ESTATE", "cannot exec in a container that is not running (container not running)"),
    );
  }
  if (record.status === "paused")
    return fail(new MoatError("ESTATE", "cannot exec in a paused container: resume it first"));
  if (fds.length !== 3)
    return fail(new MoatError("EPROTO", `exec needs 3 stdio descriptors, got ${fds.length}`));
  if (!/^[\w.-]{1,128}$/.test(req.execId ?? "") || execs.has(req.execId)) {
    return fail(new MoatError("EEXIST", `exec id "${req.execId}" is invalid or in use: pick another`));
  }
  let stdio: Stdio;
  try {
    stdio = stdioOf(fds, req.terminal);
  } catch (e) {
    return fail(e);
  }
  const x: Exec = { conn, stdio, running: false, stopWinSize: () => {} };
  execs.set(req.execId, x);
  let pid: number | undefined;
  try {
    pid = (await sandbox!.exec({ containerId: id, execId: req.execId, process: req.process, stdio })).pid;
  } catch (e) {
    execs.delete(req.execId);
    await closeStdio(stdio);
    execSend(conn, { ok: false, code: isMoatError(e) ? e.code : "EIO", error: (e as Error).message });
    return;
  }
  x.running = true;
  log(`exec ${req.execId} started: ${req.process.args.join(" ")}`);
  if (req.terminal) {
    x.stopWinSize = followWinSize(fds[0]!, (size) => {
      sandbox!.resize(id, size, req.execId).catch((e: Error) => log(`resize ${req.execId}: ${e.message}`));
    });
  }
  execSend(conn, { ok: true, event: "started", ...(pid !== undefined ? { pid } : {}) });
  let status: number;
  try {
    status = (await sandbox!.wait(id, req.execId)).status;
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
  execs.delete(req.execId);
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
        const x = execId ? execs.get(execId) : undefined;
        if (x?.running && execId) {
          // The caller (the exec invocation, or the waiter whose pid it was given) is gone:
          // the process goes with it rather than running on with nobody to report to.
          log(`exec ${execId}: its caller hung up; killing it`);
          sandbox!.signal(id, "SIGKILL", execId).catch(() => {});
        }
        if (!x) closeQuietly(conn);
        else void sandbox!.wait(id, execId).finally(() => setTimeout(() => closeQuietly(conn), 100));
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

function listenExec(): void {
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
  execListener = { fd, watcher };
}

function listen(): Promise<void> {
  const sockPath = socketPath(root, id);
  fs.rmSync(sockPath, { force: true });
  server = net.createServer((sock) => {
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("error", () => {});
    sock.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      void handle(sock, line);
    });
  });
  const addr = socketAddress(root, id);
  return new Promise<void>((resolve, reject) => {
    server!.once("error", reject);
    server!.listen(addr.path, () => {
      fs.chmodSync(sockPath, 0o600);
      resolve();
    });
  }).finally(() => addr.release());
}

async function main(): Promise<void> {
  process.on("SIGTERM", () => void finish(128 + 15));
  process.on("SIGINT", () => void finish(128 + 2));
  process.on("SIGHUP", () => {}); // the caller's terminal going away is not ours to die of
  record = await readRecord(root, id);
  // Record ourselves first: from here on `delete --force` finds us by the state file too.
  await setStatus({ monitorPid: process.pid, monitorStart: processStart(process.pid) ?? "" });
  spec = readBundleSpec(record.bundle);
  const choice = chooseIsolation({ flag: isolationArg || undefined, annotations: spec.annotations });
  const sizing: Partial<SandboxConfig> = sandboxSizing(spec.annotations);
  const backend = await selectBackend(choice);
  log(`isolation ${backend.isolation} (asked: ${choice})`);
  sandbox = await backend.createSandbox({
    ...sizing,
    id,
    stateDir: sandboxDir(root, id),
    firstRootfs: record.rootfs,
    debug: debugArg === "1",
  });
  await sandbox.create({
    id,
    bundle: record.bundle,
    spec,
    rootfs: record.rootfs,
    stdio: {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      ...(ttyArg === "tty" ? { terminal: true } : {}),
    },
  });
  await listen();
  listenExec();
  const creating = toState(record, "creating");
  await runHooks(spec.hooks, "prestart", creating);
  await runHooks(spec.hooks, "createRuntime", creating);
  await runHooks(spec.hooks, "createContainer", creating);
  await setStatus({ status: "created", isolation: backend.isolation });
  log("created");
}

main().then(
  () => report("ok"),
  async (e: unknown) => {
    log(`create failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    report(JSON.stringify(errorReply(e)));
    server?.close();
    await sandbox?.destroy().catch(() => {});
    process.exit(1);
  },
);
