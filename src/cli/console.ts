// `moat exec -t`: the OCI layer gives a process a terminal the way runc does, by sending the
// pty's master over a console socket. Here moat is its own caller: it listens on a private
// socket, receives the master, and relays it to this terminal (raw, following its size).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tty from "node:tty";
import { MoatError } from "../spec/errors.js";
import { setWinSize } from "../sys/pty.js";
import { accept, closeFd, recvWithFds, SOCK_STREAM, unixListen, watchReadable } from "../sys/socket.js";

export interface Console {
  /** The socket path to pass as consoleSocket. */
  socket: string;
  /** Resolves once the master arrived and the relay runs. */
  attached: Promise<void>;
  /** After the process ended: wait for its last output (bounded), restore the terminal, clean up. */
  close(): Promise<void>;
}

/** interactive (-i): our stdin goes to the terminal too, raw when it is a terminal itself. */
export function openConsole(interactive: boolean): Console {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moat-console-"));
  const socket = path.join(dir, "console.sock");
  const listenFd = unixListen(socket, SOCK_STREAM, 1);
  let conn = -1;
  let master: tty.ReadStream | undefined;
  let masterFd = -1;
  let ended: Promise<void> = Promise.resolve();
  const stdin = process.stdin;
  const out = process.stdout;
  let raw = false;
  const onResize = () => {
    if (master && out.isTTY) setWinSize(masterFd, { rows: out.rows, columns: out.columns });
  };
  const onInput = (d: Buffer) => master?.write(d);

  let watchers: { stop(): void }[] = [];
  const attached = new Promise<void>((resolve, reject) => {
    const onMaster = () => {
      let got: { fds: number[]; eof: boolean };
      try {
        got = recvWithFds(conn);
      } catch (e) {
        if ((e as { code?: string }).code === "EAGAIN") return;
        return reject(e);
      }
      for (const w of watchers) w.stop();
      watchers = [];
      if (got.fds.length === 0) {
        return reject(new MoatError("EPROTO", "the console socket closed without sending a terminal"));
      }
      for (const extra of got.fds.slice(1)) closeFd(extra);
      // One TTY handle reads and writes the master (libuv does not reopen a master).
      masterFd = got.fds[0]!;
      master = new tty.ReadStream(masterFd);
      ended = new Promise<void>((res) => {
        master!.on("error", () => res()); // EIO: every slave is closed, the process is gone
        master!.on("end", () => res());
        master!.on("close", () => res());
      });
      master.on("data", (d: Buffer) => out.write(d));
      onResize();
      process.on("SIGWINCH", onResize);
      if (interactive) {
        if (stdin.isTTY) {
          stdin.setRawMode(true);
          raw = true;
        }
        stdin.on("data", onInput);
      }
      resolve();
    };
    const onConnect = () => {
      try {
        conn = accept(listenFd);
      } catch (e) {
        if ((e as { code?: string }).code === "EAGAIN") return;
        return reject(e);
      }
      for (const w of watchers) w.stop();
      watchers = [watchReadable(conn, onMaster)];
    };
    watchers = [watchReadable(listenFd, onConnect)];
  });
  attached.catch(() => {});

  return {
    socket,
    attached,
    async close() {
      for (const w of watchers) w.stop();
      process.off("SIGWINCH", onResize);
      if (interactive) {
        stdin.off("data", onInput);
        if (raw) stdin.setRawMode(false);
        stdin.destroy();
      }
      if (master) {
        // The exit status can arrive before the last output has crossed the pty.
        await Promise.race([ended, new Promise((r) => setTimeout(r, 2000))]);
        master.destroy();
      }
      if (conn >= 0) closeFd(conn);
      closeFd(listenFd);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
