// Stopping a container as docker stop does, shared by kill (and stop, restart).
import { type ContainerInfo, killContainer, waitContainer } from "../../oci/api.js";
import { parseSignal, type Signal } from "../../sandbox/signals.js";
import { isMoatError, MoatError } from "../../spec/errors.js";
import { stateRoot } from "../containers.js";

/** docker stop's grace period: TERM, then KILL after this many seconds. */
export const DEFAULT_GRACE_S = 10;
const STOP_SIGNAL_ANNOTATION = "org.opencontainers.image.stopSignal";

/** Seconds (a whole or decimal number, 0 allowed) as given to --time. */
export function parseSeconds(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !Number.isFinite(n)) {
    throw new MoatError("EINVAL", `--time "${text}" is not a number of seconds: use e.g. --time 10`);
  }
  return n;
}

/**
 * Stop a running container as docker stop does: its stop signal (the image's, else TERM),
 * then KILL if it still runs after the grace period. Resolves with its exit status.
 */
export async function stopContainer(
  root: string,
  info: ContainerInfo,
  graceS: number,
): Promise<number | undefined> {
  const sroot = stateRoot(root);
  const first: Signal = parseSignal(info.annotations[STOP_SIGNAL_ANNOTATION] ?? "TERM");
  await signalIfRunning(sroot, info.id, first);
  const status = await waitContainer(sroot, info.id, graceS * 1000);
  if (status !== undefined) return status;
  await signalIfRunning(sroot, info.id, "SIGKILL");
  return waitContainer(sroot, info.id, 30_000);
}

/** Signal it; a container that ended meanwhile is not an error. */
export async function signalIfRunning(sroot: string, id: string, sig: Signal): Promise<void> {
  try {
    await killContainer(sroot, id, sig);
  } catch (e) {
    if (!isMoatError(e, "ESTATE")) throw e;
  }
}
