// Node streams over descriptors the monitor was handed (its own 0-2, or an exec's received
// with SCM_RIGHTS), whatever they are: a terminal, a pipe or socket, a file or /dev/null.
import * as fs from "node:fs";
import * as net from "node:net";
import type { Readable, Writable } from "node:stream";
import * as tty from "node:tty";
import type { Stdio } from "../sandbox/types.js";
import { getWinSize } from "../sys/pty.js";

function kind(fd: number): "tty" | "stream" | "file" {
  if (tty.isatty(fd)) return "tty";
  const st = fs.fstatSync(fd);
  return st.isFIFO() || st.isSocket() ? "stream" : "file";
}

/**
 * libuv reopens a pty slave by its name (so making it non-blocking touches nobody else's
 * descriptor) and leaves the descriptor it was given open: close that one, or the pty never
 * hangs up for the caller holding the master.
 */
function adopt<T extends tty.ReadStream | tty.WriteStream>(s: T, fd: number): T {
  const own = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (own !== undefined && own >= 0 && own !== fd) fs.closeSync(fd);
  return s;
}

function readable(fd: number): Readable {
  const k = kind(fd);
  const r: Readable =
    k === "tty"
      ? adopt(new tty.ReadStream(fd), fd)
      : k === "stream"
        ? new net.Socket({ fd, readable: true, writable: false })
        : fs.createReadStream("", { fd, autoClose: true });
  r.on("error", () => {}); // a caller that went away ends the stream; the exit status still counts
  return r;
}

function writable(fd: number): Writable {
  const k = kind(fd);
  const w: Writable =
    k === "tty"
      ? adopt(new tty.WriteStream(fd), fd)
      : k === "stream"
        ? new net.Socket({ fd, readable: false, writable: true })
        : fs.createWriteStream("", { fd, autoClose: true });
  w.on("error", () => {});
  return w;
}

/** A process's Stdio over three received descriptors (it owns them from now on). */
export function stdioOf(fds: number[], terminal: boolean): Stdio {
  const [i, o, e] = fds;
  return {
    ...(i !== undefined ? { stdin: readable(i) } : {}),
    ...(o !== undefined ? { stdout: writable(o) } : {}),
    ...(e !== undefined ? { stderr: writable(e) } : {}),
    terminal,
  };
}

/** Flush and close what stdioOf made: readers of the caller's pipes then see end of file. */
export async function closeStdio(stdio: Stdio): Promise<void> {
  (stdio.stdin as Readable | undefined)?.destroy();
  const ends = [stdio.stdout, stdio.stderr].map(
    (w) =>
      new Promise<void>((resolve) => {
        const s = w as Writable | undefined;
        if (!s || s.destroyed) return resolve();
        const t = setTimeout(() => {
          s.destroy();
          resolve();
        }, 2000);
        s.end(() => {
          clearTimeout(t);
          s.destroy();
          resolve();
        });
      }),
  );
  await Promise.all(ends);
}

/**
 * Follow the window size of a pty slave: the caller sets it on the master (TIOCSWINSZ) and
 * nobody tells the slave's holder, so poll it and pass each change on. Returns the stop.
 */
export function followWinSize(
  fd: number,
  onSize: (size: { width: number; height: number }) => void,
): () => void {
  let last = "";
  const check = () => {
    try {
      const s = getWinSize(fd);
      const key = `${s.columns}x${s.rows}`;
      if (key !== last && s.columns > 0 && s.rows > 0) {
        last = key;
        onSize({ width: s.columns, height: s.rows });
      }
    } catch {
      // the pty is gone: the process ended
    }
  };
  check();
  const timer = setInterval(check, 250);
  timer.unref();
  return () => clearInterval(timer);
}
