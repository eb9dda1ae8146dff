// The monitor's control socket: the state directory's unix socket, one JSON-line request
// per connection (start, kill, state, stats, wait, pause, resume), one JSON-line reply. Kept
// apart because it is the protocol the runc commands speak (monitor.ts is their side); what
// each request does is the lifecycle's (monitor-lifecycle.ts).
import * as fs from "node:fs";
import * as net from "node:net";
import { MoatError } from "../spec/errors.js";
import type { MonitorRequest } from "./monitor.js";
import { id, mon, root } from "./monitor-context.js";
import { onKill, onPause, onResume, onStart } from "./monitor-lifecycle.js";
import { record } from "./monitor-record.js";
import { errorReply, send } from "./monitor-reply.js";
import { socketAddress, socketPath } from "./state.js";

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
        return send(sock, { ok: true, ...(mon.exitStatus !== undefined ? { status: mon.exitStatus } : {}) });
      case "stats":
        if (mon.exitStatus !== undefined || record.status !== "running")
          throw new MoatError("ESTATE", `container not running (${record.status})`);
        return send(sock, { ok: true, stats: await mon.sandbox!.stats(id) });
      case "wait":
        if (mon.exitStatus !== undefined && mon.exitRecorded)
          return send(sock, { ok: true, status: mon.exitStatus });
        mon.waiters.push(sock);
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

export function listen(): Promise<void> {
  const sockPath = socketPath(root, id);
  fs.rmSync(sockPath, { force: true });
  const server = net.createServer((sock) => {
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
  mon.server = server;
  const addr = socketAddress(root, id);
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(addr.path, () => {
      fs.chmodSync(sockPath, 0o600);
      resolve();
    });
  }).finally(() => addr.release());
}
