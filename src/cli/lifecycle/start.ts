// `moat start`: a stopped container runs again, as docker start does: a fresh sandbox (and
// monitor) from the bundle it kept (its rootfs with what it wrote), the same id, name and
// isolation, its output appended to its logs. -a stays attached: the logs follow until it
// stops, and its exit status is ours.
import * as fs from "node:fs";
import { readBundleSpec } from "../../image/bundle.js";
import type { ImageStore } from "../../image/store.js";
import type { IsolationChoice } from "../../isolation/index.js";
import {
  containerState,
  createContainer,
  deleteContainer,
  startContainer,
  waitContainer,
} from "../../oci/api.js";
import { createRecord } from "../../oci/state.js";
import { MoatError } from "../../spec/errors.js";
import { START } from "../command-specs.js";
import { bundleDir, logFile, resolveContainer, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import type { Output } from "../output.js";
import { logSizes, openLogs } from "./log-files.js";
import { streamLogs } from "./logs.js";
import { type Keeper, startKeeper } from "./tty-keeper.js";

export const START_USAGE = "usage: moat start [-a] CONTAINER...";
export const START_FLAGS = { attach: { type: "boolean", short: "a" } } as const;

/** Run the container's process again (or for the first time, if it was only created). */
export async function startAgain(root: string, id: string): Promise<void> {
  const sroot = stateRoot(root);
  const info = await containerState(sroot, id);
  if (info.status === "running" || info.status === "paused") return;
  if (info.status === "created") return startContainer(sroot, id);
  if (info.status === "creating") {
    throw new MoatError("ESTATE", `container ${id} is being created: try again in a moment`);
  }
  if (!fs.existsSync(`${bundleDir(root, id)}/config.json`)) {
    throw new MoatError("ENOENT", `container ${id} has no bundle left to start from: remove it with moat rm`);
  }
  // The old run's OCI state goes (its monitor is gone); the bundle, logs and name stay.
  await deleteContainer(sroot, id, { force: true });
  const fds: number[] = [];
  let keeper: Keeper | undefined;
  try {
    // A container made with -t gets a terminal again, held by a keeper as run -d -t does.
    if (readBundleSpec(bundleDir(root, id)).process?.terminal) keeper = await startKeeper(logFile(root, id));
    const [outFd, errFd] = await openLogs(root, id);
    fds.push(outFd, errFd);
    const stdin = fs.openSync("/dev/null", "r");
    fds.push(stdin);
    await createContainer(sroot, id, {
      bundle: bundleDir(root, id),
      ...(info.isolation ? { isolation: info.isolation as IsolationChoice } : {}),
      debug: Boolean(process.env.MOAT_DEBUG),
      stdio: [stdin, outFd, errFd],
      ...(keeper ? { consoleSocket: keeper.socket } : {}),
    });
    await startContainer(sroot, id);
  } catch (e) {
    keeper?.abandon();
    // It cannot run again: it stays listed as the stopped container it was, for rm or a retry.
    await deleteContainer(sroot, id, { force: true }).catch(() => {});
    const { status: _s, monitorPid: _p, monitorStart: _t, ...rest } = info;
    await createRecord(sroot, { ...rest, status: "stopped" }).catch(() => {});
    throw e;
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}

export async function cmdStart(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(START, argv);
  if (positionals.length === 0) throw new MoatError("EINVAL", START_USAGE);
  if (values.attach && positionals.length > 1) {
    throw new MoatError("EINVAL", "moat start -a attaches to one container: name just one");
  }
  for (const text of positionals) {
    const id = await resolveContainer(store.root, text);
    const from = logSizes(store.root, id);
    await startAgain(store.root, id);
    if (values.attach) {
      await streamLogs(store.root, id, { follow: true, from });
      return (await waitContainer(stateRoot(store.root), id)) ?? 0;
    }
    out.result({ id, started: true }, text);
  }
  return 0;
}
