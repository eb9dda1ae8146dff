// The runc-style state directory: one directory per container under --root, holding
// state.json (written atomically, under a lock), the monitor's control socket and its log.
// Everything a later invocation needs is on disk, so any invocation (or the monitor) may die
// at any point and `delete --force` can still find and remove what was made.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import lockfile from "proper-lockfile";
import writeFileAtomic from "write-file-atomic";
import { MoatError } from "../spec/errors.js";
import { OciVersion, type State } from "../spec/runtime.js";
import { processStart } from "../sys/pids.js";

export const DEFAULT_STATE_ROOT = "/run/moat-oci";

export type OciStatus = "creating" | "created" | "running" | "paused" | "stopped";

export interface ContainerRecord {
  id: string;
  bundle: string;
  rootfs: string;
  /** ISO time the container was created. */
  created: string;
  owner: string;
  annotations: Record<string, string>;
  status: OciStatus;
  /** The monitor process (the pid runc callers see) and its start time, to survive pid reuse. */
  monitorPid?: number;
  monitorStart?: string;
  /** Host-visible pid of the container's init, when the backend has one. */
  containerPid?: number;
  isolation?: string;
  exitStatus?: number;
  exitedAt?: string;
  /** The OOM killer ended the container's init (ExitStatus.oomKilled). */
  oomKilled?: boolean;
}

const ID_RE = /^[\w+.-]{1,1024}$/;

export function validateId(id: string | undefined): string {
  if (!id) throw new MoatError("EINVAL", "container id cannot be empty: give the container an ID");
  if (!ID_RE.test(id) || id === "." || id === "..") {
    throw new MoatError(
      "EINVAL",
      `invalid container id format: ${id} (use letters, digits, '_', '+', '-' and '.')`,
    );
  }
  return id;
}

export function containerDir(root: string, id: string): string {
  return path.join(root, validateId(id));
}

export const stateFile = (root: string, id: string): string =>
  path.join(containerDir(root, id), "state.json");
export const socketPath = (root: string, id: string, name = "monitor.sock"): string =>
  path.join(containerDir(root, id), name);
/** The monitor's second socket: SOCK_SEQPACKET, for requests that carry descriptors (exec). */
export const EXEC_SOCKET = "exec.sock";
/**
 * An address for the control socket that fits in sun_path (108 bytes): long state roots (podman
 * passes 64-hex ids) are reached through an open fd of the directory, /proc/self/fd/N/.
 * Call release() once the socket is bound or connected.
 */
export function socketAddress(
  root: string,
  id: string,
  name = "monitor.sock",
): { path: string; release(): void } {
  const full = socketPath(root, id, name);
  if (Buffer.byteLength(full) < 100) return { path: full, release: () => {} };
  return shortAddress(full);
}

/** A path for any socket that fits in sun_path, through an open fd of its directory. */
export function shortAddress(full: string): { path: string; release(): void } {
  if (Buffer.byteLength(full) < 100) return { path: full, release: () => {} };
  const fd = fs.openSync(path.dirname(full), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  let open = true;
  return {
    path: `/proc/self/fd/${fd}/${path.basename(full)}`,
    release: () => {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}

/**
 * Where the backend keeps the sandbox's files (the VM's agent and QMP sockets, its 9p share):
 * ROOT/ID/sandbox, unless that is too long for the unix sockets inside it (podman's ids are 64
 * hex digits), then a short directory in the temp dir named by a hash of the container's
 * directory, so `delete --force` finds it from the id alone.
 */
export function sandboxDir(root: string, id: string): string {
  const full = path.join(containerDir(root, id), "sandbox");
  if (Buffer.byteLength(full) <= 48) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, 16);
  return path.join(os.tmpdir(), `moat-sb-${hash}`);
}

export const logPath = (root: string, id: string): string => path.join(containerDir(root, id), "monitor.log");

function notExist(id: string): MoatError {
  return new MoatError(
    "ENOENT",
    `container ${id} does not exist: see "moat list" for the containers there are`,
  );
}

/** Hold the container's lock while fn runs. The lock lives beside the directory, so fn may remove it. */
export async function withLock<T>(root: string, id: string, fn: () => Promise<T>): Promise<T> {
  const dir = containerDir(root, id);
  const release = await lockfile.lock(dir, {
    realpath: false,
    lockfilePath: `${dir}.lock`,
    // A holder killed with SIGKILL leaves the lock behind; it goes stale after 5 s.
    stale: 5000,
    update: 1000,
    retries: { retries: 100, minTimeout: 20, maxTimeout: 150 },
  });
  try {
    return await fn();
  } finally {
    await release().catch(() => {});
  }
}

/** Make the container's directory and first record; refuses an id in use. */
export async function createRecord(root: string, rec: ContainerRecord): Promise<void> {
  await fs.promises.mkdir(root, { recursive: true, mode: 0o711 });
  const dir = containerDir(root, rec.id);
  try {
    await fs.promises.mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") {
      throw new MoatError("EEXIST", `container with id exists: ${rec.id}`);
    }
    throw e;
  }
  await writeFileAtomic(path.join(dir, "state.json"), JSON.stringify(rec));
}

export async function readRecord(root: string, id: string): Promise<ContainerRecord> {
  try {
    return JSON.parse(await fs.promises.readFile(stateFile(root, id), "utf8")) as ContainerRecord;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || e instanceof SyntaxError) throw notExist(id);
    throw e;
  }
}

/** Read-modify-write under the lock. */
export async function updateRecord(
  root: string,
  id: string,
  change: (rec: ContainerRecord) => ContainerRecord | undefined,
): Promise<ContainerRecord> {
  return withLock(root, id, async () => {
    const rec = await readRecord(root, id);
    const next = change(rec) ?? rec;
    await writeFileAtomic(stateFile(root, id), JSON.stringify(next));
    return next;
  });
}

export async function listIds(root: string): Promise<string[]> {
  try {
    const names = await fs.promises.readdir(root, { withFileTypes: true });
    return names.filter((d) => d.isDirectory() && ID_RE.test(d.name)).map((d) => d.name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}

// processStart lives in src/sys/pids.ts (run records compare start times too).
export { processStart };

export function monitorAlive(rec: ContainerRecord): boolean {
  if (!rec.monitorPid) return false;
  const start = processStart(rec.monitorPid);
  return start !== undefined && (rec.monitorStart === undefined || start === rec.monitorStart);
}

/**
 * The status a caller sees. A container whose monitor is gone is stopped, whatever the
 * record says: nothing runs it any more.
 */
export function effectiveStatus(rec: ContainerRecord): OciStatus {
  if (rec.status === "stopped") return "stopped";
  if (rec.monitorPid && !monitorAlive(rec)) return "stopped";
  return rec.status;
}

/** The state as `runc state` prints it and hooks receive it. */
export function toState(
  rec: ContainerRecord,
  status: OciStatus = effectiveStatus(rec),
): State & {
  rootfs: string;
  created: string;
  owner: string;
} {
  return {
    ociVersion: OciVersion,
    id: rec.id,
    pid: status === "stopped" ? 0 : (rec.monitorPid ?? 0),
    status,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    owner: rec.owner,
    annotations: rec.annotations,
  };
}
