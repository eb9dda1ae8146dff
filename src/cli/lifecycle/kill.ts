// `moat kill`: a signal, or docker stop's TERM-then-KILL.
import type { ImageStore } from "../../image/store.js";
import { containerState, killContainer } from "../../oci/api.js";
import { parseSignal } from "../../sandbox/signals.js";
import { MoatError } from "../../spec/errors.js";
import { KILL } from "../command-specs.js";
import { resolveContainer, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import { findForeground, killForeground } from "../foreground.js";
import type { Output } from "../output.js";
import { DEFAULT_GRACE_S, parseSeconds, stopContainer, stopTimeoutOf } from "./stop-container.js";

export async function cmdKill(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(KILL, argv);
  if (positionals.length === 0) {
    throw new MoatError("EINVAL", "usage: moat kill [-s SIGNAL] [--time SECONDS] CONTAINER...");
  }
  if (values.signal && values.time) {
    throw new MoatError(
      "EINVAL",
      "--time is the grace period before KILL; with -s only that signal is sent: use one of them",
    );
  }
  const signal = values.signal ? parseSignal(values.signal) : undefined;
  const grace = values.time !== undefined ? parseSeconds(values.time) : undefined;
  for (const text of positionals) {
    // A foreground `moat run` (foreground.ts): its moat forwards the signal.
    const fg = findForeground(store.root, text);
    if (fg) {
      out.result(await killForeground(fg, signal, grace ?? DEFAULT_GRACE_S), text);
      continue;
    }
    const id = await resolveContainer(store.root, text);
    const info = await containerState(stateRoot(store.root), id);
    if (info.status !== "running" && info.status !== "created" && info.status !== "paused") {
      throw new MoatError("ESTATE", `container ${text} is not running (${info.status})`);
    }
    if (signal) {
      await killContainer(stateRoot(store.root), id, signal);
      out.result({ id, signal }, text);
      continue;
    }
    const status = await stopContainer(store.root, info, grace ?? stopTimeoutOf(info));
    out.result({ id, ...(status !== undefined ? { status } : {}) }, text);
  }
  return 0;
}
