// The per-container monitor: a detached process that owns one Sandbox for the life of one
// container, because a sandbox lives exactly as long as the process that created it. Its fds
// 0-2 are the container's stdio; it reports on fd 3 once the container is created, then
// serves JSON-line requests (start, kill, state, wait) on the state directory's socket, and
// exits with the container's status once it has recorded it.
// argv: ROOT ID ISOLATION("" = choose) DEBUG("1"|"0")
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { parseIsolation, selectBackend } from "../isolation/index.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { parseSignal, SignalNumbers } from "../sandbox/signals.js";
import { isMoatError, MoatError } from "../spec/errors.js";
import type { Spec } from "../spec/runtime.js";
import { runHooks } from "./hooks.js";
import type { MonitorReply, MonitorRequest } from "./monitor.js";
import {
  type ContainerRecord,
  containerDir,
  logPath,
  processStart,
  readRecord,
  socketAddress,
  socketPath,
  toState,
  updateRecord,
} from "./state.js";

const [root = "", id = "", isolationArg = "", debugArg = "0"] = process.argv.slice(2);
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
async function finish(status: number): Promise<never> {
  if (exitStatus === undefined) {
    exitStatus = status;
    log(`container exited with status ${status}`);
    try {
      await setStatus({ status: "stopped", exitStatus: status, exitedAt: new Date().toISOString() });
    } catch (e) {
      log(`cannot record the exit: ${(e as Error).message}`);
    }
    for (const w of waiters.splice(0)) send(w, { ok: true, status });
    await sandbox?.destroy().catch((e: Error) => log(`destroy: ${e.message}`));
    server?.close();
    fs.rmSync(socketPath(root, id), { force: true });
  }
  // Give the replies a moment to leave before the process goes.
  await new Promise((r) => setTimeout(r, 50));
  process.exit(status & 0xff);
}

async function onStart(): Promise<MonitorReply> {
  if (record.status === "stopped" || exitStatus !== undefined) {
    throw new MoatError("ESTATE", "cannot start a container that has stopped");
  }
  if (record.status === "running") throw new MoatError("ESTATE", "cannot start an already running container");
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
  sb.wait(id).then(
    (s) => finish(s.status),
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

async function onKill(req: MonitorRequest): Promise<MonitorReply> {
  const sig = parseSignal(req.signal ?? "TERM");
  if (exitStatus !== undefined || record.status === "stopped")
    throw new MoatError("ESTATE", "container not running");
  if (record.status === "created") {
    // A created container's process has not run: any signal that would end it ends it now.
    void finish(128 + SignalNumbers[sig]);
    return { ok: true };
  }
  await sandbox!.signal(id, sig);
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
  spec = JSON.parse(fs.readFileSync(path.join(record.bundle, "config.json"), "utf8")) as Spec;
  const choice = parseIsolation(
    isolationArg || process.env.MOAT_ISOLATION || spec.annotations?.["run.moat.isolation"] || "auto",
  );
  const backend = await selectBackend(choice);
  log(`isolation ${backend.isolation} (asked: ${choice})`);
  sandbox = await backend.createSandbox({
    id,
    stateDir: path.join(containerDir(root, id), "sandbox"),
    debug: debugArg === "1",
  });
  await sandbox.create({
    id,
    bundle: record.bundle,
    spec,
    rootfs: record.rootfs,
    stdio: { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
  });
  await listen();
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
