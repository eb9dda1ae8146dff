// The programmatic face of the OCI layer: what `moat`'s runc commands do, as functions, so
// other front doors (moat's own run -d / exec / kill / ps / rm) drive the same per-container
// monitor and the same state directory instead of a second implementation. Every function
// takes the state root (runc's --root) and a container id; errors are MoatErrors with runc's
// wording where callers match strings ("container not running", "does not exist").
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import writeFileAtomic from "write-file-atomic";
import { readBundleSpec, readRunnableBundleSpec } from "../image/bundle.js";
import { resolveUser } from "../image/runtime-spec.js";
import type { IsolationChoice } from "../isolation/index.js";
import { parseSignal, type Signal, SignalNumbers } from "../sandbox/signals.js";
import type { ContainerStats } from "../sandbox/types.js";
import { isMoatError, MoatError } from "../spec/errors.js";
import type { Process, Spec, User } from "../spec/runtime.js";
import { unmountAndRemove } from "../sys/mounts.js";
import { execViaMonitor } from "./exec-client.js";
import { runHooks } from "./hooks.js";
import { killContainerProcesses, type MonitorReply, request, spawnMonitor } from "./monitor.js";
import {
  type ContainerRecord,
  containerDir,
  createRecord,
  effectiveStatus,
  listIds,
  type OciStatus,
  readRecord,
  sandboxDir,
  toState,
  withLock,
} from "./state.js";

export type { ContainerRecord, OciStatus } from "./state.js";
export { DEFAULT_STATE_ROOT } from "./state.js";

/** Standard streams as host descriptors: [stdin, stdout, stderr]. */
export type StdioFds = [number, number, number];

export interface CreateOptions {
  /** The OCI bundle directory (holds config.json). */
  bundle: string;
  /** vm | userkernel | auto. Unset: chooseIsolation's order ($MOAT_ISOLATION, the bundle's annotation, the configuration file, auto). */
  isolation?: IsolationChoice;
  debug?: boolean;
  /**
   * The descriptors the container's init gets as its stdio (default: this process's 0, 1, 2).
   * They are handed to the monitor at spawn, so they may be closed once this resolves.
   * Ignored when consoleSocket is given: the container then gets a pty.
   */
  stdio?: StdioFds;
  /** runc's --console-socket: a pty is made and its master sent to this unix socket. */
  consoleSocket?: string;
  /** Write the monitor's pid here (runc's --pid-file). */
  pidFile?: string;
}

/** The container's monitor process: the pid runc callers see; it exits with the container's status. */
export interface Created {
  pid: number;
}

/** What list/state report for a container: its record, with the status as a caller sees it. */
export interface ContainerInfo extends ContainerRecord {
  /** The effective status: a container whose monitor is gone is stopped, whatever was recorded. */
  status: OciStatus;
}

/**
 * Sandbox sizing a bundle may ask for, read by the monitor from config.json annotations:
 * "run.moat.memory" (MiB), "run.moat.cpus", "run.moat.network" (nat | none),
 * "run.moat.ports" ("8080:80,8443:443", host:guest TCP). Bad values fail create.
 */
export { SIZING_ANNOTATIONS } from "./sizing.js";

/**
 * runc create: record the container, start its monitor (which creates the sandbox and the
 * container and runs the create hooks) and resolve once it is "created". On failure nothing
 * is left behind.
 */
export async function createContainer(root: string, id: string, opts: CreateOptions): Promise<Created> {
  const bundle = path.resolve(opts.bundle);
  const spec = readRunnableBundleSpec(bundle);
  if (spec.process.terminal && !opts.consoleSocket) {
    throw new MoatError(
      "EINVAL",
      "process.terminal is true but no console socket was given: pass --console-socket PATH (or set terminal to false)",
    );
  }
  if (opts.consoleSocket && !spec.process.terminal) {
    throw new MoatError(
      "EINVAL",
      "cannot use a console socket when process.terminal is false: set it to true in config.json, or drop --console-socket",
    );
  }
  const rec: ContainerRecord = {
    id,
    bundle,
    rootfs: path.resolve(bundle, spec.root.path),
    created: new Date().toISOString(),
    owner: os.userInfo().username,
    annotations: spec.annotations ?? {},
    status: "creating",
  };
  await createRecord(root, rec);
  let pid: number;
  try {
    pid = await spawnMonitor({
      root,
      id,
      ...(opts.isolation ? { isolation: opts.isolation } : {}),
      debug: Boolean(opts.debug),
      ...(opts.stdio ? { stdio: opts.stdio } : {}),
      ...(opts.consoleSocket ? { consoleSocket: path.resolve(opts.consoleSocket) } : {}),
      ...(spec.process.consoleSize ? { consoleSize: spec.process.consoleSize } : {}),
    });
  } catch (e) {
    await deleteContainer(root, id, { force: true }).catch(() => {});
    throw e;
  }
  if (opts.pidFile) await writeFileAtomic(path.resolve(opts.pidFile), String(pid));
  return { pid };
}

function fail(reply: MonitorReply): MonitorReply {
  if (!reply.ok) throw new MoatError((reply.code ?? "EIO") as "EIO", reply.error ?? "the monitor refused");
  return reply;
}

/** Ask the monitor; a monitor that is gone means the container is not running. */
async function ask(root: string, id: string, req: Parameters<typeof request>[2]): Promise<MonitorReply> {
  try {
    return fail(await request(root, id, req));
  } catch (e) {
    if (isMoatError(e, "ECONNREFUSED")) throw new MoatError("ESTATE", "container not running");
    throw e;
  }
}

/** runc start: run a created container's process (startContainer and poststart hooks run). */
export async function startContainer(root: string, id: string): Promise<void> {
  const rec = await readRecord(root, id);
  const status = effectiveStatus(rec);
  if (status === "stopped") throw new MoatError("ESTATE", "cannot start a container that has stopped");
  if (status === "running" || status === "paused")
    throw new MoatError("ESTATE", "cannot start an already running container");
  if (status !== "created") throw new MoatError("ESTATE", `cannot start a container in the ${status} state`);
  fail(await request(root, id, { op: "start" }));
}

/** The process an exec runs. Unset fields come from the container's own process (as runc exec does). */
export interface ExecProcess {
  args: string[];
  /** Extra or overriding NAME=VALUE entries, on top of the container's env. */
  env?: string[];
  cwd?: string;
  /** A User, or an image-style "name", "uid", "name:group", "uid:gid" read from the rootfs. */
  user?: User | string;
  /** Give the process a pty; needs consoleSocket (the pty's master goes there). */
  terminal?: boolean;
}

export interface ExecOptions {
  /** The descriptors the process gets as its stdio (default: this process's 0, 1, 2). */
  stdio?: StdioFds;
  /**
   * Return once the process runs instead of waiting for it. The result's pid is then a small
   * waiter process (a child of this one, in its own session) that exits with the process's
   * status: runc callers such as conmon reap it to learn the status.
   */
  detach?: boolean;
  /** runc's --console-socket: the process gets a pty whose master is sent to this unix socket. */
  consoleSocket?: string;
  /** Write the pid (see detach) here. */
  pidFile?: string;
  /** Default: a fresh random id. */
  execId?: string;
  /**
   * `proc` is a complete runtime-spec Process (what runc exec --process reads): use it as it
   * is. Otherwise its unset fields come from the container's process and its env is added.
   */
  processAsIs?: boolean;
  /** Without detach: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 this process gets go to the exec'd one. */
  forwardSignals?: boolean;
}

export interface ExecResult {
  execId: string;
  /** Without detach: the shell-style status (the exit code, or 128 + signal number). */
  status?: number;
  /** With detach: the waiter's pid (see ExecOptions.detach). */
  pid?: number;
}

/** Build the full runtime-spec Process of an exec from the container's spec, as runc exec does. */
export async function execProcess(
  rec: ContainerRecord,
  p: ExecProcess | Process,
  asIs = false,
): Promise<Process> {
  if (!p.args?.length) throw new MoatError("EINVAL", "exec: give the command to run (args is empty)");
  if (asIs) {
    const full = p as Process;
    if (typeof full.user !== "object" || typeof full.user.uid !== "number") {
      throw new MoatError(
        "EINVAL",
        "the exec process has no user {uid, gid}: a runtime-spec process needs one",
      );
    }
    return { ...full, cwd: full.cwd || "/", env: full.env ?? [] };
  }
  const spec = readBundleSpec(rec.bundle);
  const base = spec.process!;
  let user: User = base.user;
  if (typeof p.user === "string") user = await resolveUser(rec.rootfs, p.user);
  else if (p.user) user = p.user;
  const env = [...(base.env ?? [])];
  for (const e of p.env ?? []) {
    const name = e.slice(0, e.indexOf("=") < 0 ? e.length : e.indexOf("="));
    const at = env.findIndex((x) => x.startsWith(`${name}=`) || x === name);
    if (at >= 0) env[at] = e;
    else env.push(e);
  }
  return {
    ...base,
    args: p.args,
    env,
    cwd: p.cwd || base.cwd || "/",
    user,
    terminal: Boolean(p.terminal),
  };
}

/**
 * runc exec: run another process in a running container, with the given descriptors as its
 * stdio (they are passed to the monitor with SCM_RIGHTS). Without detach, resolves with its
 * exit status once it ends.
 */
export async function execInContainer(
  root: string,
  id: string,
  proc: ExecProcess | Process,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const rec = await readRecord(root, id);
  const status = effectiveStatus(rec);
  if (status === "paused")
    throw new MoatError("ESTATE", "cannot exec in a paused container: resume it first");
  if (status !== "running")
    throw new MoatError("ESTATE", "cannot exec in a stopped container (container not running)");
  if (proc.terminal && !opts.consoleSocket) {
    throw new MoatError(
      "EINVAL",
      "exec with a terminal needs a console socket: pass --console-socket PATH (or run without --tty)",
    );
  }
  const full = await execProcess(rec, proc, Boolean(opts.processAsIs));
  const execId = opts.execId ?? `exec-${randomBytes(6).toString("hex")}`;
  return execViaMonitor(root, id, {
    execId,
    process: full,
    stdio: opts.stdio ?? [0, 1, 2],
    detach: Boolean(opts.detach),
    ...(opts.consoleSocket ? { consoleSocket: path.resolve(opts.consoleSocket) } : {}),
    ...(opts.pidFile ? { pidFile: path.resolve(opts.pidFile) } : {}),
    forwardSignals: Boolean(opts.forwardSignals),
  });
}

/**
 * runc kill: send a signal (a name such as "TERM"/"SIGTERM", a number, or a Signal) to the
 * container's init, or with `all` to every process of the container (init and every exec).
 * A created container that gets a signal whose default action ends it stops at once.
 */
export async function killContainer(
  root: string,
  id: string,
  signal: string | Signal = "SIGTERM",
  opts: { all?: boolean } = {},
): Promise<void> {
  const sig = parseSignal(String(signal));
  const rec = await readRecord(root, id);
  if (effectiveStatus(rec) === "stopped") throw new MoatError("ESTATE", "container not running");
  await ask(root, id, { op: "kill", signal: sig, ...(opts.all ? { all: true } : {}) });
}

/** runc pause: freeze every process of the container (state "paused"), where the isolation can. */
export async function pauseContainer(root: string, id: string): Promise<void> {
  const rec = await readRecord(root, id);
  const status = effectiveStatus(rec);
  if (status === "paused") throw new MoatError("ESTATE", "container already paused");
  if (status !== "running") throw new MoatError("ESTATE", "container not running");
  await ask(root, id, { op: "pause" });
}

/** runc resume: thaw a paused container. */
export async function resumeContainer(root: string, id: string): Promise<void> {
  const rec = await readRecord(root, id);
  if (effectiveStatus(rec) !== "paused") throw new MoatError("ESTATE", "container not paused");
  await ask(root, id, { op: "resume" });
}

/** Resource use of a running container (Sandbox.stats: resident memory, CPU time, processes). */
export async function statsContainer(root: string, id: string): Promise<ContainerStats> {
  const rec = await readRecord(root, id);
  const status = effectiveStatus(rec);
  if (status !== "running") throw new MoatError("ESTATE", `container not running (${status})`);
  const reply = await ask(root, id, { op: "stats" });
  if (!reply.stats) throw new MoatError("EPROTO", "the monitor answered stats without any");
  return reply.stats;
}

/**
 * The container's exit status (the code, or 128 + signal number) once it has stopped.
 * With timeoutMs, resolves undefined if it still runs after that long; without, waits for
 * as long as it takes.
 */
export async function waitContainer(
  root: string,
  id: string,
  timeoutMs?: number,
): Promise<number | undefined> {
  const fromRecord = async (): Promise<number | undefined> => {
    const rec = await readRecord(root, id);
    if (rec.exitStatus !== undefined) return rec.exitStatus;
    if (effectiveStatus(rec) !== "stopped") return undefined;
    // The monitor records the status before it closes its socket; give the write a moment.
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const again = await readRecord(root, id);
      if (again.exitStatus !== undefined) return again.exitStatus;
    }
    // A monitor killed outright never recorded a status: report it as killed.
    return 128 + SignalNumbers.SIGKILL;
  };
  const known = await fromRecord();
  if (known !== undefined) return known;
  const waited = request(root, id, { op: "wait" }).then(
    (r) => fail(r).status,
    (e: unknown) => {
      if (isMoatError(e, "ECONNREFUSED")) return undefined;
      throw e;
    },
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout =
    timeoutMs === undefined
      ? undefined
      : new Promise<"timeout">((r) => {
          timer = setTimeout(() => r("timeout"), timeoutMs);
        });
  try {
    const r = await (timeout ? Promise.race([waited, timeout]) : waited);
    if (r === "timeout") return undefined;
    if (r !== undefined) return r;
    return await fromRecord();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * runc delete: without force, a stopped or created container (as runc); a running or paused
 * one is refused. With force: kill whatever is left (however the monitor or an earlier
 * invocation died), detach its mounts, run poststop, remove its state. Deleting an id that
 * does not exist succeeds with force, as with runc.
 */
export async function deleteContainer(
  root: string,
  id: string,
  opts: { force?: boolean; onWarning?: (msg: string) => void } = {},
): Promise<void> {
  const dir = containerDir(root, id);
  if (!fs.existsSync(dir)) {
    if (opts.force) return;
    throw new MoatError("ENOENT", `container ${id} does not exist`);
  }
  if (!opts.force) {
    const status = effectiveStatus(await readRecord(root, id));
    if (status === "running" || status === "creating" || status === "paused") {
      throw new MoatError(
        "ESTATE",
        `cannot delete container ${id} that is not stopped: ${status} (stop it first, or use delete --force)`,
      );
    }
  }
  const removeAll = async () => {
    let rec: ContainerRecord | undefined;
    try {
      rec = await readRecord(root, id);
    } catch {
      // no record (a create killed early): the directory alone is left
    }
    await killContainerProcesses(root, id, rec?.monitorPid);
    const sbDir = sandboxDir(root, id);
    for (const d of sbDir !== path.join(dir, "sandbox") ? [sbDir, dir] : [dir]) {
      const left = await unmountAndRemove(d);
      if (left.length > 0) {
        throw new MoatError(
          "EBUSY",
          `cannot unmount ${left.join(", ")}: unmount it by hand, then delete ${id} again (nothing under it was removed)`,
        );
      }
    }
    if (rec && rec.status !== "creating") {
      let spec: Spec | undefined;
      try {
        spec = readBundleSpec(rec.bundle);
      } catch {
        // a bundle gone or broken has no poststop hooks to run
      }
      await runHooks(spec?.hooks, "poststop", toState(rec, "stopped")).catch((e: Error) =>
        opts.onWarning?.(e.message),
      );
    }
  };
  // A lock left by a killed invocation goes stale; a delete must not wait on it forever.
  await withLock(root, id, removeAll).catch(async (e) => {
    if ((e as { code?: string }).code !== "ELOCKED") throw e;
    await removeAll();
    await fs.promises.rm(`${dir}.lock`, { recursive: true, force: true });
  });
}

function info(rec: ContainerRecord): ContainerInfo {
  return { ...rec, status: effectiveStatus(rec) };
}

/** One container's record with its effective status; ENOENT "container ID does not exist". */
export async function containerState(root: string, id: string): Promise<ContainerInfo> {
  return info(await readRecord(root, id));
}

/** Every container under the root (half-made or half-deleted ones are skipped). */
export async function listContainers(root: string): Promise<ContainerInfo[]> {
  const out: ContainerInfo[] = [];
  for (const id of await listIds(root)) {
    try {
      out.push(info(await readRecord(root, id)));
    } catch {
      // being created or deleted right now
    }
  }
  return out;
}

/** The runtime-spec state JSON of a container, as `moat state` prints it and hooks read it. */
export async function ociState(root: string, id: string): Promise<ReturnType<typeof toState>> {
  return toState(await readRecord(root, id));
}
