// The waiter of a detached exec (runc exec --detach): a small process, a child of the exec
// invocation in its own session, whose fds 0-2 are the exec'd process's stdio. It hands them
// to the container's monitor, reports on fd 3 once the process runs, then waits and exits
// with the process's status. Its pid is what --pid-file gets: a caller such as conmon (a
// child subreaper) reaps it to learn the status, and signals sent to it reach the process.
// argv: ROOT ID REQUEST-JSON
import * as fs from "node:fs";
import { isMoatError } from "../spec/errors.js";
import { type ExecEvent, type ExecRequest, FORWARDED_SIGNALS, openExec } from "./exec-client.js";
import { request } from "./monitor.js";

const [root = "", id = "", reqJson = "{}"] = process.argv.slice(2);

function report(line: string): void {
  try {
    fs.writeSync(3, `${line}\n`);
    fs.closeSync(3);
  } catch {
    // the exec invocation is gone; the exit status still tells the story
  }
}

async function main(): Promise<number> {
  const req = JSON.parse(reqJson) as ExecRequest;
  for (const s of FORWARDED_SIGNALS) {
    process.on(s, (sig: NodeJS.Signals) => {
      request(root, id, { op: "kill", signal: sig, execId: req.execId }).catch(() => {});
    });
  }
  let h: ReturnType<typeof openExec>;
  try {
    h = openExec(root, id, req, [0, 1, 2]);
    await h.started;
  } catch (e) {
    const ev: ExecEvent = {
      ok: false,
      code: isMoatError(e) ? e.code : "EIO",
      error: e instanceof Error ? e.message : String(e),
    };
    report(JSON.stringify(ev));
    return 255;
  }
  report("ok");
  try {
    return await h.exited;
  } catch {
    // The monitor died with the container: nothing ran to the end.
    return 255;
  }
}

/**
 * Exit only once the exec invocation that started us is gone and we belong to the caller's
 * subreaper: that invocation is a Node process whose libuv reaps the children it spawned, so
 * a waiter ending first would have its status taken there, and the caller that reads
 * --pid-file would find no child to reap (ECHILD).
 */
async function exitWhenOrphaned(status: number): Promise<never> {
  const parent = process.ppid;
  for (let i = 0; i < 3000 && process.ppid === parent; i++) await new Promise((r) => setTimeout(r, 10));
  process.exit(status & 0xff);
}

main().then(
  (status) => exitWhenOrphaned(status),
  () => exitWhenOrphaned(255),
);
