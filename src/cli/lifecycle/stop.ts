// `moat stop`, `moat wait`, `moat restart`: docker's, over the OCI layer's kill and wait.
import type { ImageStore } from "../../image/store.js";
import { containerState, waitContainer } from "../../oci/api.js";
import { parseSignal } from "../../sandbox/signals.js";
import { MoatError } from "../../spec/errors.js";
import { RESTART, STOP, WAIT } from "../command-specs.js";
import { resolveContainer, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import { findForeground, stopForeground } from "../foreground.js";
import type { Output } from "../output.js";
import { AUTOREMOVE_ANNOTATION } from "./run-detached.js";
import { startAgain } from "./start.js";
import { DEFAULT_GRACE_S, parseSeconds, stopContainer, stopTimeoutOf } from "./stop-container.js";

export const STOP_USAGE = "usage: moat stop [-t SECONDS] [-s SIGNAL] CONTAINER...";
export const STOP_FLAGS = {
  time: { type: "string", short: "t" },
  signal: { type: "string", short: "s" },
} as const;
export const RESTART_USAGE = "usage: moat restart [-t SECONDS] [-s SIGNAL] CONTAINER...";
export const WAIT_USAGE = "usage: moat wait CONTAINER...";

const live = (status: string) => status === "running" || status === "created" || status === "paused";

/**
 * Stop one container: its stop signal (-s, else --stop-signal, else the image's, else TERM),
 * then KILL after -t seconds (else --stop-timeout, else 10). One already stopped is left as it is.
 */
async function stopOne(
  root: string,
  id: string,
  values: { time?: string; signal?: string },
): Promise<number | undefined> {
  const info = await containerState(stateRoot(root), id);
  if (!live(info.status)) return info.exitStatus;
  const grace = values.time !== undefined ? parseSeconds(values.time, "-t") : stopTimeoutOf(info);
  return stopContainer(root, info, grace, values.signal ? parseSignal(values.signal) : undefined);
}

export async function cmdStop(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(STOP, argv);
  if (positionals.length === 0) throw new MoatError("EINVAL", STOP_USAGE);
  if (values.signal) parseSignal(values.signal); // a bad signal fails before anything stops
  if (values.time !== undefined) parseSeconds(values.time, "-t");
  for (const text of positionals) {
    // A foreground `moat run`: its moat forwards the stop signal, then KILL after the grace.
    const fg = findForeground(store.root, text);
    if (fg) {
      const grace = values.time !== undefined ? parseSeconds(values.time, "-t") : DEFAULT_GRACE_S;
      const status = await stopForeground(fg, grace, values.signal ? parseSignal(values.signal) : undefined);
      out.result({ id: fg.id, ...(status !== undefined ? { status } : {}) }, text);
      continue;
    }
    const id = await resolveContainer(store.root, text);
    const status = await stopOne(store.root, id, values);
    out.result({ id, ...(status !== undefined ? { status } : {}) }, text);
  }
  return 0;
}

export async function cmdRestart(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(RESTART, argv);
  if (positionals.length === 0) throw new MoatError("EINVAL", RESTART_USAGE);
  if (values.signal) parseSignal(values.signal);
  if (values.time !== undefined) parseSeconds(values.time, "-t");
  for (const text of positionals) {
    const id = await resolveContainer(store.root, text);
    const info = await containerState(stateRoot(store.root), id);
    if (info.annotations[AUTOREMOVE_ANNOTATION] === "true") {
      throw new MoatError(
        "EINVAL",
        `container ${text} was run with --rm: it is removed once it stops, so it cannot be restarted; run it again instead`,
      );
    }
    await stopOne(store.root, id, values);
    await startAgain(store.root, id);
    out.result({ id, restarted: true }, text);
  }
  return 0;
}

/** Block until each container stops; print each one's exit status, as docker wait does. */
export async function cmdWait(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { positionals } = parseCommand(WAIT, argv);
  if (positionals.length === 0) throw new MoatError("EINVAL", WAIT_USAGE);
  const ids = [];
  for (const text of positionals) ids.push(await resolveContainer(store.root, text));
  for (const id of ids) {
    const status = await waitContainer(stateRoot(store.root), id);
    // A bare number, as scripts read `code=$(moat wait c)`; a JSON line with --json.
    if (out.forced) out.result({ id, status }, String(status));
    else process.stdout.write(`${status}\n`);
  }
  return 0;
}
