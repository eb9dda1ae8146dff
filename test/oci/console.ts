// A console-socket receiver, as conmon or a shim runs one: listen on a unix stream socket,
// accept the runtime's connection, take the pty master it sends with SCM_RIGHTS (Node cannot
// receive descriptors, so through moat's sys wrappers) and collect what the master reads.
import * as fs from "node:fs";
import * as path from "node:path";
import * as tty from "node:tty";
import {
  accept,
  closeFd,
  MSG_DONTWAIT,
  recvWithFds,
  SOCK_STREAM,
  unixListen,
  watchReadable,
} from "../../src/sys/socket.js";
import { tempDir } from "../helpers/tmp.js";

export interface ConsoleReceiver {
  path: string;
  /** The payload the runtime sent with the master (the pty's name). */
  name: Promise<string>;
  /** Everything read from the master so far. */
  output(): string;
  /** Write to the master: what a person types. */
  write(text: string): void;
  /** Resolves once the master reads EOF/EIO: every holder of the slave closed it. */
  closed: Promise<void>;
  close(): void;
}

export function consoleReceiver(): ConsoleReceiver {
  const sockPath = path.join(tempDir("moat-oci-console-"), "console.sock");
  const listener = unixListen(sockPath, SOCK_STREAM);
  let out = "";
  let master: tty.ReadStream | undefined;
  let masterFd = -1;
  let gotName!: (n: string) => void;
  let gotClosed!: () => void;
  const name = new Promise<string>((r) => {
    gotName = r;
  });
  const closed = new Promise<void>((r) => {
    gotClosed = r;
  });
  let conn = -1;
  const connWatch: { stop(): void }[] = [];
  const acceptWatch = watchReadable(listener, () => {
    try {
      conn = accept(listener);
    } catch {
      return;
    }
    acceptWatch.stop();
    const w = watchReadable(conn, () => {
      let msg: ReturnType<typeof recvWithFds>;
      try {
        msg = recvWithFds(conn, 4096, MSG_DONTWAIT);
      } catch {
        return;
      }
      w.stop();
      const fd = msg.fds[0];
      if (fd === undefined) return;
      gotName(msg.data.toString("utf8"));
      master = new tty.ReadStream(fd);
      masterFd = fd;
      master.setEncoding("utf8");
      master.on("data", (d: string) => {
        out += d;
      });
      // A pty master reads EIO once the last slave is closed.
      master.on("error", () => gotClosed());
      master.on("end", () => gotClosed());
      master.on("close", () => gotClosed());
    });
    connWatch.push(w);
  });
  return {
    path: sockPath,
    name,
    output: () => out,
    // Small writes to a pty master do not block: no second stream on the descriptor.
    write: (text) => {
      if (masterFd >= 0) fs.writeSync(masterFd, text);
    },
    closed,
    close: () => {
      acceptWatch.stop();
      for (const w of connWatch) w.stop();
      master?.destroy();
      if (conn >= 0) closeFd(conn);
      closeFd(listener);
    },
  };
}
