// The container's lifecycle as the monitor drives it, once created: start (with the spec's
// startContainer and poststart hooks, and the init's terminal size followed), kill, pause
// and resume (signals held while frozen), and the end, which records the exit, answers the
// waiters, destroys the sandbox, closes the execs and the sockets, and exits. Kept apart
// from the sockets that ask for these (monitor-control.ts, monitor-exec.ts): this part holds
// the rules of which state allows what.
import * as fs from "node:fs";
import { parseSignal, type Signal, SignalNumbers } from "../sandbox/signals.js";
import { MoatError } from "../spec/errors.js";
import { runHooks } from "./hooks.js";
import type { MonitorReply, MonitorRequest } from "./monitor.js";
import { closeQuietly, id, log, mon, root, ttyArg } from "./monitor-context.js";
import { record, setStatus } from "./monitor-record.js";
import { send } from "./monitor-reply.js";
import { freeze, thaw } from "./pause.js";
import { EXEC_SOCKET, socketPath, toState } from "./state.js";
import { closeStdio, followWinSize } from "./stdio.js";

/** The container ended (or never ran): record it, answer waiters, release the sandbox, exit. */
export async function finish(status: number, oomKilled = false): Promise<never> {
  if (mon.exitStatus === undefined) {
    mon.exitStatus = status;
    log(`container exited with status ${status}${oomKilled ? " (OOM killed)" : ""}`);
    mon.stopInitWinSize();
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
        ...(oomKilled ? { oomKilled: true } : {}),
      });
    } catch (e) {
      log(`cannot record the exit: ${(e as Error).message}`);
    }
    mon.exitRecorded = true;
    for (const w of mon.waiters.splice(0)) send(w, { ok: true, status });
    await mon.sandbox?.destroy().catch((e: Error) => log(`destroy: ${e.message}`));
    // Execs die with their container; their callers learn it from the closed connection.
    for (const [, x] of mon.execs) {
      x.stopWinSize();
      await closeStdio(x.stdio);
      closeQuietly(x.conn);
    }
    mon.execs.clear();
    mon.server?.close();
    if (mon.execListener) {
      mon.execListener.watcher.stop();
      closeQuietly(mon.execListener.fd);
    }
    fs.rmSync(socketPath(root, id), { force: true });
    fs.rmSync(socketPath(root, id, EXEC_SOCKET), { force: true });
  }
  // Give the replies a moment to leave before the process goes.
  await new Promise((r) => setTimeout(r, 50));
  process.exit(status & 0xff);
}

export async function onStart(): Promise<MonitorReply> {
  if (record.status === "stopped" || mon.exitStatus !== undefined) {
    throw new MoatError("ESTATE", "cannot start a container that has stopped");
  }
  if (record.status === "running" || record.status === "paused")
    throw new MoatError("ESTATE", "cannot start an already running container");
  if (record.status !== "created")
    throw new MoatError("ESTATE", `cannot start a container in the ${record.status} state`);
  const sb = mon.sandbox!;
  try {
    await runHooks(mon.spec.hooks, "startContainer", toState(record, "created"));
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
    mon.stopInitWinSize = followWinSize(0, (size) => {
      sb.resize(id, size).catch((e: Error) => log(`resize: ${e.message}`));
    });
  }
  sb.wait(id).then(
    (s) => finish(s.status, Boolean(s.oomKilled)),
    (e: Error) => {
      log(`wait failed: ${e.message}`);
      return finish(255);
    },
  );
  // The spec: a failing poststart hook is logged, and the lifecycle goes on.
  await runHooks(mon.spec.hooks, "poststart", toState(record, "running")).catch((e: Error) =>
    log(`warning: ${e.message}`),
  );
  return { ok: true, pid: process.pid };
}

/** `all`: every process of the container, the ones its processes forked included (runc kill --all). */
async function deliver(sig: Signal, execId?: string, all = false): Promise<void> {
  if (all) await mon.sandbox!.signalAll(id, sig);
  else await mon.sandbox!.signal(id, sig, execId);
}

export async function onKill(req: MonitorRequest): Promise<MonitorReply> {
  const sig = parseSignal(req.signal ?? "TERM");
  if (mon.exitStatus !== undefined || record.status === "stopped")
    throw new MoatError("ESTATE", "container not running");
  if (req.execId) {
    const x = mon.execs.get(req.execId);
    if (!x?.running) throw new MoatError("ENOENT", `no such process: exec ${req.execId} is not running`);
  }
  if (record.status === "created") {
    // A created container's process has not run: any signal that would end it ends it now.
    void finish(128 + SignalNumbers[sig]);
    return { ok: true };
  }
  const all = Boolean(req.all);
  if (record.status === "paused") {
    if (sig !== "SIGKILL") {
      mon.pending.push({
        signal: sig,
        ...(req.execId ? { execId: req.execId } : {}),
        ...(all ? { all } : {}),
      });
      return { ok: true };
    }
    // SIGKILL ends even a frozen process: thaw the sandbox so the kill can reach it.
    thaw(record.isolation ?? "");
    await setStatus({ status: "running" });
  }
  await deliver(sig, all ? undefined : req.execId, all);
  return { ok: true };
}

export async function onPause(): Promise<MonitorReply> {
  if (mon.exitStatus !== undefined || record.status === "stopped")
    throw new MoatError("ESTATE", "container not running");
  if (record.status === "paused") throw new MoatError("ESTATE", "container already paused");
  if (record.status !== "running") throw new MoatError("ESTATE", "container not running");
  freeze(record.isolation ?? "");
  await setStatus({ status: "paused" });
  log("paused");
  return { ok: true };
}

export async function onResume(): Promise<MonitorReply> {
  if (record.status !== "paused") throw new MoatError("ESTATE", "container not paused");
  thaw(record.isolation ?? "");
  await setStatus({ status: "running" });
  log("resumed");
  for (const p of mon.pending.splice(0)) {
    await deliver(p.signal, p.execId, p.all).catch((e: Error) => log(`signal after resume: ${e.message}`));
  }
  return { ok: true };
}
