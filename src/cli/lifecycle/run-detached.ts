// `moat run -d`: a container that outlives the command, owned by its OCI monitor.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { createBundle } from "../../image/bundle.js";
import type { SpecOverrides } from "../../image/runtime-spec.js";
import type { ImageStore } from "../../image/store.js";
import type { IsolationChoice } from "../../isolation/index.js";
import { createContainer, SIZING_ANNOTATIONS, startContainer } from "../../oci/api.js";
import {
  bundleDir,
  claimName,
  IMAGE_ANNOTATION,
  logFile,
  NAME_ANNOTATION,
  newId,
  stateRoot,
} from "../containers.js";
import type { Output } from "../output.js";
import { openLogs } from "./log-files.js";
import { removeAll } from "./remove.js";
import { type Keeper, startKeeper } from "./tty-keeper.js";

export interface DetachedRun {
  /** The image as the user typed it (shown by ps) and as the store names it. */
  imageText: string;
  image: string;
  overrides: SpecOverrides;
  isolation: IsolationChoice;
  name?: string;
  /** -t: a terminal, held by a tty keeper (tty-keeper-main.ts) that logs what it shows. */
  tty?: boolean;
  /** --rm: the container is removed once it stops (by a detached remover, autoremove-main.ts). */
  autoRemove?: boolean;
  /** -i: the container reads this command's stdin (fd 0), even after moat returns. */
  interactive: boolean;
  sizing: {
    memoryMiB?: number;
    cpus?: number;
    network?: "nat" | "none";
    ports?: { host: number; guest: number }[];
  };
}

function sizingAnnotations(s: DetachedRun["sizing"]): Record<string, string> {
  return {
    ...(s.memoryMiB ? { [SIZING_ANNOTATIONS.memory]: String(s.memoryMiB) } : {}),
    ...(s.cpus ? { [SIZING_ANNOTATIONS.cpus]: String(s.cpus) } : {}),
    ...(s.network ? { [SIZING_ANNOTATIONS.network]: s.network } : {}),
    ...(s.ports?.length
      ? { [SIZING_ANNOTATIONS.ports]: s.ports.map((p) => `${p.host}:${p.guest}`).join(",") }
      : {}),
  };
}

/** Marks a `run -d --rm` container, which restart refuses (it would be removed, not restarted). */
export const AUTOREMOVE_ANNOTATION = "run.moat.autoremove";

const REMOVER = new URL("./autoremove-main.js", import.meta.url).pathname;

/** Start the process that removes the container once it stops; it outlives this command. */
function spawnRemover(root: string, id: string): void {
  const child = spawn(process.execPath, [REMOVER, root, id], { detached: true, stdio: "ignore" });
  child.unref();
}

/**
 * `moat run -d`: bundle the image, create and start the container with its stdout and stderr
 * on its log files, print its id and return; the container's monitor keeps it running.
 */
export async function runDetached(store: ImageStore, out: Output, r: DetachedRun): Promise<number> {
  const root = store.root;
  const id = newId();
  if (r.name) await claimName(root, r.name, id);
  const fds: number[] = [];
  let keeper: Keeper | undefined;
  try {
    const annotations = {
      [NAME_ANNOTATION]: r.name ?? "",
      [IMAGE_ANNOTATION]: r.imageText,
      ...sizingAnnotations(r.sizing),
      ...(r.autoRemove ? { [AUTOREMOVE_ANNOTATION]: "true" } : {}),
    };
    await createBundle(store, r.image, bundleDir(root, id), {
      ...r.overrides,
      ...(r.tty ? { terminal: true } : {}),
      annotations: { ...r.overrides.annotations, ...annotations },
    });
    // The monitor hands these to the container: it keeps its own copies, so ours are closed below.
    const [outFd, errFd] = await openLogs(root, id);
    fds.push(outFd, errFd);
    const stdin = r.interactive ? 0 : fs.openSync("/dev/null", "r");
    if (stdin !== 0) fds.push(stdin);
    keeper = r.tty ? await startKeeper(logFile(root, id)) : undefined;
    await createContainer(stateRoot(root), id, {
      bundle: bundleDir(root, id),
      isolation: r.isolation,
      debug: Boolean(process.env.MOAT_DEBUG),
      stdio: [stdin, outFd, errFd],
      ...(keeper ? { consoleSocket: keeper.socket } : {}),
    });
    await startContainer(stateRoot(root), id);
    if (r.autoRemove) spawnRemover(root, id);
  } catch (e) {
    keeper?.abandon();
    await removeAll(root, id, r.name).catch(() => {});
    throw e;
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  if (out.forced) out.result({ id, ...(r.name ? { name: r.name } : {}) }, id);
  else process.stdout.write(`${id}\n`);
  return 0;
}
