// Stopping a container as docker stop does, shared by kill (and stop, restart).
import { type ContainerInfo, killContainer, waitContainer } from "../../oci/api.js";
import { parseSignal, type Signal } from "../../sandbox/signals.js";
import { isMoatError, MoatError } from "../../spec/errors.js";
import { stateRoot } from "../containers.js";

/** docker stop's grace period: TERM, then KILL after this many seconds. */
export const DEFAULT_GRACE_S = 10;
/** `moat run --stop-signal` and `--stop-timeout` write these; the image's stop signal comes after. */
export const STOP_SIGNAL_ANNOTATION = "run.moat.stop-signal";
export const STOP_TIMEOUT_ANNOTATION = "run.moat.stop-timeout";
const IMAGE_STOP_SIGNAL_ANNOTATION = "org.opencontainers.image.stopSignal";

/** The signal that asks this container to stop: --stop-signal, else the image's, else TERM. */
export function stopSignalOf(info: Pick<ContainerInfo, "annotations">): Signal {
  const a = info.annotations;
  return parseSignal(a[STOP_SIGNAL_ANNOTATION] || a[IMAGE_STOP_SIGNAL_ANNOTATION] || "TERM");
}

/** Its grace period before KILL, seconds: --stop-timeout, else docker's 10. */
export function stopTimeoutOf(info: Pick<ContainerInfo, "annotations">): number {
  const t = info.annotations[STOP_TIMEOUT_ANNOTATION];
  return t !== undefined && /^\d+(\.\d+)?$/.test(t) ? Number(t) : DEFAULT_GRACE_S;
}

/** Seconds (a whole or decimal number, 0 allowed) as given to --time. */
export function parseSeconds(text: string, flag = "--time"): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !Number.isFinite(n)) {
    throw new MoatError("EINVAL", `${flag} "${text}" is not a number of seconds: use e.g. ${flag} 10`);
  }
  return n;
}

/**
 * Stop a running container as docker stop does: its stop signal (see stopSignalOf, unless
 * one is given), then KILL if it still runs after the grace period. Resolves with its exit status.
 */
export async function stopContainer(
  root: string,
  info: ContainerInfo,
  graceS: number,
  signal?: Signal,
): Promise<number | undefined> {
  const sroot = stateRoot(root);
  const first: Signal = signal ?? stopSignalOf(info);
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
