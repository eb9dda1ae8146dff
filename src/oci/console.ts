// runc's console socket: the caller (conmon, a shim, a test) listens on a unix socket; the
// runtime makes a pty, connects, and sends the pty's master with SCM_RIGHTS, the pty's name
// as the message. The slave becomes the process's stdio; the caller relays the master.
import { MoatError } from "../spec/errors.js";
import type { ConsoleSize } from "../spec/runtime.js";
import { closePtyFd, makeRaw, openPty, type Pty, setWinSize } from "../sys/pty.js";
import { closeFd, SOCK_STREAM, sendWithFds, unixConnect } from "../sys/socket.js";
import { shortAddress } from "./state.js";

/**
 * A pty for a container process. Its slave is raw: the container's own terminal (in the guest,
 * or the userkernel's) does the line discipline, the host pty only relays bytes.
 */
export function containerPty(size?: ConsoleSize): Pty {
  const pty = openPty();
  try {
    makeRaw(pty.slave);
    if (size && size.width > 0 && size.height > 0) {
      setWinSize(pty.slave, { rows: size.height, columns: size.width });
    }
    return pty;
  } catch (e) {
    closePtyFd(pty.master);
    closePtyFd(pty.slave);
    throw e;
  }
}

/** Connect to the console socket at `socketPath` and send the master; the master is not closed here. */
export function sendConsole(socketPath: string, pty: Pty): void {
  const addr = shortAddress(socketPath);
  let sock: number;
  try {
    sock = unixConnect(addr.path, SOCK_STREAM);
  } catch (e) {
    throw new MoatError(
      "ECONNREFUSED",
      `cannot connect to the console socket ${socketPath} (${(e as Error).message}): the caller must listen there before create/exec`,
    );
  } finally {
    addr.release();
  }
  try {
    sendWithFds(sock, Buffer.from(pty.name), [pty.master]);
  } finally {
    closeFd(sock);
  }
}
