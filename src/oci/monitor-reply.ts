// A reply on the monitor's control socket: one JSON line, then the end of the connection;
// a failure carries the MoatError's code. Kept apart because the request handlers and the
// lifecycle (which answers waiters when the container exits) both reply.
import type * as net from "node:net";
import { isMoatError } from "../spec/errors.js";
import type { MonitorReply } from "./monitor.js";

export function send(sock: net.Socket, reply: MonitorReply): void {
  sock.end(`${JSON.stringify(reply)}\n`);
}

export function errorReply(e: unknown): MonitorReply {
  return {
    ok: false,
    code: isMoatError(e) ? e.code : "EIO",
    error: e instanceof Error ? e.message : String(e),
  };
}
