// A task's standard streams as containerd names them: FIFO paths that containerd (ctr, the
// CRI) has created and holds open, or file:// URIs for log files. binary:// log drivers are
// refused with a clear error. FIFOs are opened non-blocking and wrapped in net.Socket, so a
// slow or absent peer never ties up a thread of Node's pool. (Node opens every file
// close-on-exec, so no descriptor here leaks into a sandbox process.)
import * as fs from "node:fs";
import * as net from "node:net";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import type { Stdio } from "../sandbox/types.js";
import { MoatError } from "../spec/errors.js";

const { O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK, O_APPEND, O_CREAT } = fs.constants;

export interface TaskIo {
  readonly stdio: Stdio;
  /**
   * Let the process see end-of-file on stdin once containerd's side has closed too (CloseIO):
   * until then the shim holds the FIFO's write end, so a client that opens its end late
   * (ctr does) does not look like an immediate EOF.
   */
  closeStdin(): void;
  /** Close every stream: after the process's output has all been written. */
  close(): Promise<void>;
}

function openOutput(uri: string, what: string): Writable | undefined {
  if (!uri) return undefined;
  if (uri.startsWith("binary://")) {
    throw new MoatError(
      "ENOTSUP",
      `${what} is a binary:// log driver (${uri}), which moat's shim does not run yet: use FIFOs (the default) or a file:// log`,
    );
  }
  const file = uri.startsWith("file://")
    ? fileURLToPath(uri)
    : uri.startsWith("fifo://")
      ? uri.slice(7)
      : uri;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if (!uri.startsWith("file://"))
      throw new MoatError("ENOENT", `${what} ${file} does not exist: ${(e as Error).message}`);
    const fd = fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT, 0o640);
    return fs.createWriteStream("", { fd });
  }
  if (st.isFIFO()) {
    // O_RDWR: opening never fails for want of a reader, and a reader that goes away and comes
    // back (containerd restarting) finds the stream still there.
    const fd = fs.openSync(file, O_RDWR | O_NONBLOCK);
    const s = new net.Socket({ fd, readable: false, writable: true });
    s.on("error", () => {});
    return s;
  }
  const fd = fs.openSync(file, O_WRONLY | O_APPEND);
  return fs.createWriteStream("", { fd });
}

/** Open a task's streams; on failure, whatever was opened is closed again. */
export function openTaskIo(paths: {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}): TaskIo {
  const opened: Array<Readable | Writable> = [];
  let keeper: number | undefined;
  try {
    let stdin: Readable | undefined;
    if (paths.stdin) {
      const fd = fs.openSync(paths.stdin, O_RDONLY | O_NONBLOCK);
      const s = new net.Socket({ fd, readable: true, writable: false });
      s.on("error", () => {});
      opened.push(s);
      stdin = s;
      keeper = fs.openSync(paths.stdin, O_WRONLY | O_NONBLOCK);
    }
    const stdout = openOutput(paths.stdout, "stdout");
    if (stdout) opened.push(stdout);
    // With a terminal, the pty carries both streams and stderr stays unused.
    const stderr = paths.terminal ? undefined : openOutput(paths.stderr, "stderr");
    if (stderr) opened.push(stderr);
    const stdio: Stdio = {
      ...(stdin ? { stdin } : {}),
      ...(stdout ? { stdout } : {}),
      ...(stderr ? { stderr } : {}),
      terminal: paths.terminal,
    };
    return {
      stdio,
      closeStdin() {
        if (keeper !== undefined) fs.closeSync(keeper);
        keeper = undefined;
      },
      async close() {
        if (keeper !== undefined) fs.closeSync(keeper);
        keeper = undefined;
        await Promise.all(
          opened.map(
            (s) =>
              new Promise<void>((resolve) => {
                if ("end" in s && typeof s.end === "function" && (s as Writable).writable) {
                  (s as Writable).end(() => {
                    s.destroy();
                    resolve();
                  });
                } else {
                  s.destroy();
                  resolve();
                }
              }),
          ),
        );
      },
    };
  } catch (e) {
    if (keeper !== undefined) fs.closeSync(keeper);
    for (const s of opened) s.destroy();
    throw e;
  }
}
