// `moat exec`: another process in a running container, with our stdio (or a pty, or its log).
import * as fs from "node:fs";
import type { ImageStore } from "../../image/store.js";
import { execInContainer } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import { EXEC } from "../command-specs.js";
import { openConsole } from "../console.js";
import { logFile, resolveContainer, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import type { Output } from "../output.js";
import { resolveEnv } from "../run-options.js";
import { openLogs } from "./log-files.js";
import { startKeeper } from "./tty-keeper.js";

const EXEC_USAGE = "usage: moat exec [-i] [-t] [-d] [-e K=V]... [-w DIR] [-u USER] CONTAINER CMD...";

export async function cmdExec(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals, command } = parseCommand(EXEC, argv);
  if (positionals.length !== 1 || command.length === 0) throw new MoatError("EINVAL", EXEC_USAGE);
  const root = store.root;
  const id = await resolveContainer(root, positionals[0]!);
  const proc = {
    args: command,
    // docker's -e NAME: this shell's value, or left out.
    ...(values.env ? { env: resolveEnv(values.env, process.env) } : {}),
    ...(values.workdir ? { cwd: values.workdir } : {}),
    ...(values.user ? { user: values.user } : {}),
  };
  const fds: number[] = [];
  try {
    if (values.detach && values.tty) {
      // A terminal nobody watches: a keeper holds it and appends what it shows to the log.
      const keeper = await startKeeper(logFile(root, id));
      try {
        const r = await execInContainer(
          stateRoot(root),
          id,
          { ...proc, terminal: true },
          { consoleSocket: keeper.socket, detach: true },
        );
        out.result({ id, execId: r.execId, pid: r.pid }, r.execId);
        return 0;
      } catch (e) {
        keeper.abandon();
        throw e;
      }
    }
    if (values.detach) {
      // A detached exec writes where the container does: its logs.
      const [outFd, errFd] = await openLogs(root, id);
      fds.push(outFd, errFd);
      const stdin = fs.openSync("/dev/null", "r");
      fds.push(stdin);
      const r = await execInContainer(stateRoot(root), id, proc, {
        stdio: [stdin, outFd, errFd],
        detach: true,
      });
      out.result({ id, execId: r.execId, pid: r.pid }, r.execId);
      return 0;
    }
    if (values.tty) {
      // A terminal: the pty's master comes back to us over a console socket, as to runc's callers.
      const con = openConsole(Boolean(values.interactive));
      try {
        const r = await execInContainer(
          stateRoot(root),
          id,
          { ...proc, terminal: true },
          { consoleSocket: con.socket, forwardSignals: true },
        );
        await con.attached;
        return r.status ?? 0;
      } finally {
        await con.close();
      }
    }
    const stdin = values.interactive ? 0 : fs.openSync("/dev/null", "r");
    if (stdin !== 0) fds.push(stdin);
    const r = await execInContainer(stateRoot(root), id, proc, {
      stdio: [stdin, 1, 2],
      forwardSignals: true,
    });
    return r.status ?? 0;
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}
