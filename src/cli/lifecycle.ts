// moat's docker-like container lifecycle: run -d, exec, kill, ps, logs, rm. Each container is
// an OCI container of src/oci (one detached monitor owning its sandbox), under moat's root;
// these commands only add names, images, a log file and docker's habits on top.
import * as fs from "node:fs";
import { createBundle, removeBundle } from "../image/bundle.js";
import type { SpecOverrides } from "../image/runtime-spec.js";
import type { ImageStore } from "../image/store.js";
import type { IsolationChoice } from "../isolation/index.js";
import {
  type ContainerInfo,
  containerState,
  createContainer,
  deleteContainer,
  execInContainer,
  killContainer,
  listContainers,
  SIZING_ANNOTATIONS,
  startContainer,
  waitContainer,
} from "../oci/api.js";
import { parseSignal, type Signal } from "../sandbox/signals.js";
import { isMoatError, MoatError } from "../spec/errors.js";
import type { Spec } from "../spec/runtime.js";
import { EXEC, KILL, LOGS, PS, RM } from "./command-specs.js";
import { openConsole } from "./console.js";
import {
  bundleDir,
  claimName,
  IMAGE_ANNOTATION,
  logFile,
  NAME_ANNOTATION,
  newId,
  releaseName,
  resolveContainer,
  shortId,
  stateRoot,
} from "./containers.js";
import { parseCommand } from "./flags.js";
import {
  findForeground,
  foregroundJson,
  foregroundRow,
  killForeground,
  listForeground,
} from "./foreground.js";
import type { Output } from "./output.js";
import {
  STOP_SIGNAL_ANNOTATION as RUN_STOP_SIGNAL_ANNOTATION,
  resolveEnv,
  STOP_TIMEOUT_ANNOTATION,
} from "./run-options.js";

/** docker stop's grace period: TERM, then KILL after this many seconds. */
const DEFAULT_GRACE_S = 10;
const STOP_SIGNAL_ANNOTATION = "org.opencontainers.image.stopSignal";

export interface DetachedRun {
  /** The image as the user typed it (shown by ps) and as the store names it. */
  imageText: string;
  image: string;
  overrides: SpecOverrides;
  isolation: IsolationChoice;
  name?: string;
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

/** Remove every trace of a container: its OCI state (killing what is left), bundle, log and name. */
async function removeAll(root: string, id: string, name: string | undefined): Promise<void> {
  await deleteContainer(stateRoot(root), id, { force: true });
  if (fs.existsSync(bundleDir(root, id))) await removeBundle(bundleDir(root, id));
  await fs.promises.rm(logFile(root, id), { force: true });
  await releaseName(root, name, id);
}

/**
 * `moat run -d`: bundle the image, create and start the container with its stdout and stderr
 * on a log file, print its id and return; the container's monitor keeps it running.
 */
export async function runDetached(store: ImageStore, out: Output, r: DetachedRun): Promise<number> {
  const root = store.root;
  const id = newId();
  if (r.name) await claimName(root, r.name, id);
  const fds: number[] = [];
  try {
    const annotations = {
      [NAME_ANNOTATION]: r.name ?? "",
      [IMAGE_ANNOTATION]: r.imageText,
      ...sizingAnnotations(r.sizing),
    };
    await createBundle(store, r.image, bundleDir(root, id), {
      ...r.overrides,
      annotations: { ...r.overrides.annotations, ...annotations },
    });
    await fs.promises.mkdir(`${root}/logs`, { recursive: true, mode: 0o700 });
    // The monitor hands these to the container: it keeps its own copies, so ours are closed below.
    const logFd = fs.openSync(logFile(root, id), "a", 0o600);
    fds.push(logFd);
    const stdin = r.interactive ? 0 : fs.openSync("/dev/null", "r");
    if (stdin !== 0) fds.push(stdin);
    await createContainer(stateRoot(root), id, {
      bundle: bundleDir(root, id),
      isolation: r.isolation,
      debug: Boolean(process.env.MOAT_DEBUG),
      stdio: [stdin, logFd, logFd],
    });
    await startContainer(stateRoot(root), id);
  } catch (e) {
    await removeAll(root, id, r.name).catch(() => {});
    throw e;
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  if (out.forced) out.result({ id, ...(r.name ? { name: r.name } : {}) }, id);
  else process.stdout.write(`${id}\n`);
  return 0;
}

const EXEC_USAGE = "usage: moat exec [-i] [-t] [-d] [-e K=V]... [-w DIR] [-u USER] CONTAINER CMD...";

export async function cmdExec(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals, command } = parseCommand(EXEC, argv);
  if (positionals.length !== 1 || command.length === 0) throw new MoatError("EINVAL", EXEC_USAGE);
  if (values.tty && values.detach) {
    throw new MoatError(
      "EINVAL",
      "moat exec -d does not take -t: a detached process has no terminal to show",
    );
  }
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
    if (values.detach) {
      // A detached exec writes where the container does: its log.
      const logFd = fs.openSync(logFile(root, id), "a", 0o600);
      fds.push(logFd);
      const stdin = fs.openSync("/dev/null", "r");
      fds.push(stdin);
      const r = await execInContainer(stateRoot(root), id, proc, {
        stdio: [stdin, logFd, logFd],
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

/** Seconds (a whole or decimal number, 0 allowed) as given to --time. */
function parseSeconds(text: string): number {
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
async function stopContainer(root: string, info: ContainerInfo, graceS: number): Promise<number | undefined> {
  const sroot = stateRoot(root);
  // run's --stop-signal, else the image's StopSignal, else TERM.
  const first: Signal = parseSignal(
    info.annotations[RUN_STOP_SIGNAL_ANNOTATION] || info.annotations[STOP_SIGNAL_ANNOTATION] || "TERM",
  );
  await signalIfRunning(sroot, info.id, first);
  const status = await waitContainer(sroot, info.id, graceS * 1000);
  if (status !== undefined) return status;
  await signalIfRunning(sroot, info.id, "SIGKILL");
  return waitContainer(sroot, info.id, 30_000);
}

/** Signal it; a container that ended meanwhile is not an error. */
async function signalIfRunning(sroot: string, id: string, sig: Signal): Promise<void> {
  try {
    await killContainer(sroot, id, sig);
  } catch (e) {
    if (!isMoatError(e, "ESTATE")) throw e;
  }
}

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
    // Without --time: the container's own --stop-timeout, else docker's 10 s.
    const annotated = info.annotations[STOP_TIMEOUT_ANNOTATION];
    const status = await stopContainer(
      store.root,
      info,
      grace ?? (annotated !== undefined ? Number(annotated) : DEFAULT_GRACE_S),
    );
    out.result({ id, ...(status !== undefined ? { status } : {}) }, text);
  }
  return 0;
}

function ago(iso: string | undefined): string {
  if (!iso) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? "" : "s"}`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? "" : "s"}`;
  return `${Math.round(h / 24)} days`;
}

function commandOf(c: ContainerInfo): string[] {
  try {
    const spec = JSON.parse(fs.readFileSync(`${c.bundle}/config.json`, "utf8")) as Spec;
    return spec.process?.args ?? [];
  } catch {
    return [];
  }
}

function statusText(c: ContainerInfo): string {
  switch (c.status) {
    case "running":
      return `Up ${ago(c.created)}`;
    case "stopped":
      return c.exitStatus !== undefined ? `Exited (${c.exitStatus}) ${ago(c.exitedAt)} ago` : "Exited";
    default:
      return c.status[0]!.toUpperCase() + c.status.slice(1);
  }
}

export async function cmdPs(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(PS, argv);
  if (positionals.length > 0) {
    throw new MoatError("EINVAL", "usage: moat ps [-a] [-q] [--json] (it takes no container)");
  }
  const json = out.json || Boolean(values.json);
  const list = (await listContainers(stateRoot(store.root)))
    .filter((c) => values.all || c.status !== "stopped")
    .sort((a, b) => b.created.localeCompare(a.created));
  const foreground = listForeground(store.root).filter((f) => values.all || f.status !== "exited");
  if (values.quiet) {
    for (const c of [...foreground, ...list]) process.stdout.write(`${json ? c.id : shortId(c.id)}\n`);
    return 0;
  }
  if (json) {
    for (const f of foreground) process.stdout.write(`${JSON.stringify(foregroundJson(f))}\n`);
    for (const c of list) {
      process.stdout.write(
        `${JSON.stringify({
          id: c.id,
          name: c.annotations[NAME_ANNOTATION] || undefined,
          image: c.annotations[IMAGE_ANNOTATION],
          command: commandOf(c),
          created: c.created,
          status: c.status,
          ...(c.exitStatus !== undefined ? { exitStatus: c.exitStatus, exitedAt: c.exitedAt } : {}),
          isolation: c.isolation,
          pid: c.status === "stopped" ? undefined : c.monitorPid,
        })}\n`,
      );
    }
    return 0;
  }
  const rows = [["CONTAINER ID", "NAME", "IMAGE", "COMMAND", "CREATED", "STATUS", "ISOLATION"]];
  for (const f of foreground) rows.push(foregroundRow(f, ago));
  for (const c of list) {
    let cmd = commandOf(c).join(" ");
    if (cmd.length > 30) cmd = `${cmd.slice(0, 29)}…`;
    rows.push([
      shortId(c.id),
      c.annotations[NAME_ANNOTATION] ?? "",
      c.annotations[IMAGE_ANNOTATION] ?? "",
      `"${cmd}"`,
      `${ago(c.created)} ago`,
      statusText(c),
      c.isolation ?? "",
    ]);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) {
    process.stdout.write(
      `${r
        .map((v, i) => v.padEnd(w[i]!))
        .join("   ")
        .trimEnd()}\n`,
    );
  }
  return 0;
}

/** Copy fd from pos to EOF onto our stdout, honouring back-pressure; returns the new position. */
async function copyToStdout(fd: number, pos: number): Promise<number> {
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) return pos;
    pos += n;
    if (!process.stdout.write(Buffer.from(buf.subarray(0, n)))) {
      await new Promise((r) => process.stdout.once("drain", r));
    }
  }
}

export async function cmdLogs(store: ImageStore, argv: string[], _out: Output): Promise<number> {
  const { values, positionals } = parseCommand(LOGS, argv);
  if (positionals.length !== 1) throw new MoatError("EINVAL", "usage: moat logs [-f] CONTAINER");
  const id = await resolveContainer(store.root, positionals[0]!);
  let fd: number;
  try {
    fd = fs.openSync(logFile(store.root, id), "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0; // nothing written yet
    throw e;
  }
  try {
    let pos = await copyToStdout(fd, 0);
    if (!values.follow) return 0;
    // Follow until the container has stopped, then take what it wrote last.
    for (;;) {
      const info = await containerState(stateRoot(store.root), id).catch(() => undefined);
      const stopped = !info || info.status === "stopped";
      pos = await copyToStdout(fd, pos);
      if (stopped) return 0;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    fs.closeSync(fd);
  }
}

export async function cmdRm(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(RM, argv);
  if (positionals.length === 0) throw new MoatError("EINVAL", "usage: moat rm [-f] CONTAINER...");
  for (const text of positionals) {
    const id = await resolveContainer(store.root, text);
    const info = await containerState(stateRoot(store.root), id);
    if (info.status !== "stopped" && !values.force) {
      throw new MoatError(
        "ESTATE",
        `container ${text} is ${info.status}: stop it first with "moat kill ${text}", or remove it at once with "moat rm -f ${text}"`,
      );
    }
    await removeAll(store.root, id, info.annotations[NAME_ANNOTATION]);
    out.result({ removed: id }, text);
  }
  return 0;
}
