// A small client for QEMU's machine protocol (QMP): JSON objects, one per line, over a
// stream socket. The server greets first; the client must send qmp_capabilities before
// any other command; replies carry the id of the command they answer; events arrive
// at any time between replies.
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { MoatError } from "../../spec/errors.js";

export interface QmpEvent {
  readonly event: string;
  readonly data?: Record<string, unknown>;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  command: string;
}

export class QmpClient extends EventEmitter<{ event: [QmpEvent]; close: [] }> {
  private buffer = "";
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private greeted: ((v: unknown) => void) | undefined;
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("error", (e) =>
      this.fail(new MoatError("EIO", `QMP connection failed: ${e.message}`, { cause: e })),
    );
    socket.on("close", () => this.fail(new MoatError("EIO", "QMP connection closed: the VM has stopped")));
  }

  /** Wait for the greeting, then leave capabilities negotiation mode. */
  static async handshake(socket: Socket, timeoutMs = 10_000): Promise<QmpClient> {
    const c = new QmpClient(socket);
    const greeting = new Promise((resolve) => {
      c.greeted = resolve;
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new MoatError("ETIMEDOUT", `QEMU sent no QMP greeting within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([greeting, timeout, c.closed()]);
      await Promise.race([c.execute("qmp_capabilities"), timeout]);
    } catch (e) {
      c.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return c;
  }

  /** Run a command and resolve with its "return" value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = `moat-${this.nextId++}`;
    const msg = args ? { execute: command, arguments: args, id } : { execute: command, id };
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, command });
      this.socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private closed(): Promise<never> {
    return new Promise((_, reject) => {
      if (this.closedError) reject(this.closedError);
      else this.once("close", () => reject(this.closedError));
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line !== "") this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.fail(new MoatError("EPROTO", `QEMU sent a QMP line that is not JSON: ${line.slice(0, 200)}`));
      this.socket.destroy();
      return;
    }
    if ("QMP" in msg) {
      this.greeted?.(msg["QMP"]);
      this.greeted = undefined;
      return;
    }
    if (typeof msg["event"] === "string") {
      this.emit("event", { event: msg["event"], data: msg["data"] as Record<string, unknown> | undefined });
      return;
    }
    const id = typeof msg["id"] === "string" ? msg["id"] : undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) return; // a reply to nobody: ignore rather than guess
    this.pending.delete(id);
    if ("error" in msg) {
      const err = msg["error"] as { class?: string; desc?: string };
      p.reject(
        new MoatError(
          "EIO",
          `QMP ${p.command} failed: ${err.class ?? "Error"}: ${err.desc ?? "no description"}`,
        ),
      );
    } else {
      p.resolve(msg["return"]);
    }
  }

  private fail(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.emit("close");
  }
}
