// The terminal of a detached container (`moat run -d -t`, `moat exec -d -t`): the OCI layer
// sends the pty's master to a console socket, as to runc's callers; this detached process (a
// session of its own) receives it, holds it open so the container keeps its terminal after
// moat returns, and appends what the terminal shows to the container's log. Nothing writes to
// the terminal: like `docker run -dit` without an attach, a shell there waits for input.
// It exits once every slave is closed (the process ended). argv: SOCKET LOG. Reports on fd 3.
import * as fs from "node:fs";
import * as path from "node:path";
import * as tty from "node:tty";
import { accept, closeFd, recvWithFds, SOCK_STREAM, unixListen, watchReadable } from "../../sys/socket.js";

const [socket = "", logPath = ""] = process.argv.slice(2);

function report(line: string): void {
  try {
    fs.writeSync(3, `${line}\n`);
    fs.closeSync(3);
  } catch {
    // the CLI is gone; the container still gets its terminal
  }
}

process.on("SIGHUP", () => {});
let listenFd: number;
let logFd: number;
try {
  logFd = fs.openSync(logPath, "a", 0o600);
  listenFd = unixListen(socket, SOCK_STREAM, 1);
} catch (e) {
  report(`cannot keep the terminal: ${(e as Error).message}`);
  process.exit(1);
}
report("ok");
// No master within a minute: the create failed and nobody will send one.
const giveUp = setTimeout(() => process.exit(1), 60_000);
let conn = -1;
const w = watchReadable(listenFd, () => {
  try {
    conn = accept(listenFd);
  } catch {
    return; // EAGAIN
  }
  w.stop();
  const r = watchReadable(conn, () => {
    let got: { fds: number[] };
    try {
      got = recvWithFds(conn);
    } catch (e) {
      if ((e as { code?: string }).code === "EAGAIN") return;
      process.exit(1);
    }
    r.stop();
    clearTimeout(giveUp);
    closeFd(conn);
    closeFd(listenFd);
    fs.rmSync(path.dirname(socket), { recursive: true, force: true });
    if (got.fds.length === 0) process.exit(1);
    for (const extra of got.fds.slice(1)) closeFd(extra);
    const master = new tty.ReadStream(got.fds[0]!);
    master.on("data", (d: Buffer) => fs.writeSync(logFd, d));
    const done = () => process.exit(0);
    master.on("error", done); // EIO: every slave is closed
    master.on("end", done);
    master.on("close", done);
  });
});
