// Start a tty keeper (tty-keeper-main.ts) for a detached container's terminal: resolves with
// the console socket to hand to the OCI layer once the keeper listens there.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MoatError } from "../../spec/errors.js";
import { readReport } from "../../sys/report.js";

const KEEPER = new URL("./tty-keeper-main.js", import.meta.url).pathname;

export interface Keeper {
  socket: string;
  /** The create failed: end the keeper (it would give up after a minute anyway). */
  abandon(): void;
}

export async function startKeeper(logPath: string): Promise<Keeper> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moat-tty-"));
  const socket = path.join(dir, "console.sock");
  const child = spawn(process.execPath, [KEEPER, socket, logPath], {
    detached: true,
    stdio: ["ignore", "ignore", "ignore", "pipe"],
  });
  const { line } = await readReport(child);
  if (line !== "ok") {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new MoatError("EIO", `cannot give the container a terminal: ${line || "the keeper died"}`);
  }
  return {
    socket,
    abandon() {
      try {
        if (child.pid) process.kill(child.pid, "SIGKILL");
      } catch {
        // gone already
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
