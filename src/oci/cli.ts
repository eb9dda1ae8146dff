// The runc-compatible OCI runtime CLI: `moat [GLOBAL FLAGS] create|start|state|kill|delete|
// run|list|spec|features|ps ...`, so podman (--runtime), conmon and other runc callers can
// drive moat. Each container is owned by a monitor process (monitor-main.ts); these commands
// are short-lived invocations that talk to it or read its state directory.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import writeFileAtomic from "write-file-atomic";
import { parseIsolation } from "../isolation/index.js";
import { parseSignal } from "../sandbox/signals.js";
import { isMoatError, MoatError } from "../spec/errors.js";
import { OciVersion, type Spec } from "../spec/runtime.js";
import { runHooks } from "./hooks.js";
import { killContainerProcesses, request, spawnMonitor } from "./monitor.js";
import { mountsUnder, unmountAll } from "./mounts.js";
import {
  type ContainerRecord,
  containerDir,
  createRecord,
  DEFAULT_STATE_ROOT,
  effectiveStatus,
  listIds,
  readRecord,
  toState,
  validateId,
  withLock,
} from "./state.js";

export const RUNC_USAGE = `moat (runc-compatible OCI runtime mode)

usage: moat [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup]
            [--isolation vm|userkernel|auto] COMMAND [ARGS]

  create --bundle DIR [--pid-file FILE] ID   create a container; it waits for start
  start ID                                   run a created container's process
  state ID                                   print the state as JSON
  kill [--all] ID [SIGNAL]                   signal it (default TERM; a name or a number)
  delete [--force] ID                        remove it (--force kills it first)
  run --bundle DIR [--pid-file FILE] ID      create, start, wait and delete; exit with its status
  list [--format table|json] [-q]            list containers
  ps [--format table|json] ID                processes of a container
  spec [--bundle DIR]                        write a default config.json
  features                                   what this runtime honours, as JSON

--root is the state directory (default ${DEFAULT_STATE_ROOT}). Isolation: --isolation, else
$MOAT_ISOLATION, else the annotation "run.moat.isolation" in config.json, else auto.
The container's stdio is this command's stdio; the pid in --pid-file and in "state" is the
container's monitor process, which exits with the container's exit status.

How moat tells runc use from its own CLI: create, start, state, kill, delete, list, ps, spec
and features are always runc commands. "run" is runc's when it is given --bundle/-b (or
--pid-file, --detach/-d, --console-socket), or when --log, --log-format or --systemd-cgroup
come before it; otherwise "run IMAGE [CMD...]" is moat's own.
`;

const RUNC_ONLY = new Set(["create", "start", "state", "kill", "delete", "list", "ps", "spec", "features"]);
const RUNC_RUN_FLAGS = /^(--bundle|-b|--pid-file|--detach|-d|--console-socket)(=|$)/;
const RUNC_GLOBALS = /^(--log|--log-format|--systemd-cgroup|--rootless|--criu)(=|$)/;
const VALUE_GLOBALS = new Set(["--root", "--log", "--log-format", "--isolation", "--rootless", "--criu"]);

interface Globals {
  root: string;
  log?: string;
  logFormat: "text" | "json";
  debug: boolean;
  isolation?: string;
  runcOnly: boolean;
}

function parseGlobals(argv: string[]): { g: Globals; rest: string[] } {
  const g: Globals = { root: DEFAULT_STATE_ROOT, logFormat: "text", debug: false, runcOnly: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("-")) break;
    const [name, inline] = a.includes("=")
      ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
      : [a, undefined];
    if (RUNC_GLOBALS.test(a)) g.runcOnly = true;
    const value = VALUE_GLOBALS.has(name) ? (inline ?? argv[++i] ?? "") : undefined;
    switch (name) {
      case "--root":
        g.root = path.resolve(value!);
        break;
      case "--log":
        g.log = value!;
        break;
      case "--log-format":
        if (value !== "text" && value !== "json") {
          throw new MoatError("EINVAL", `--log-format ${value}: use text or json`);
        }
        g.logFormat = value;
        break;
      case "--isolation":
        g.isolation = parseIsolation(value!);
        break;
      case "--debug":
        g.debug = true;
        break;
      case "--systemd-cgroup":
      case "--rootless":
      case "--criu":
        break; // accepted for compatibility; moat's containers have their own kernel, not host cgroups
      case "--version":
      case "-v":
      case "--help":
      case "-h":
        return { g, rest: [name, ...argv.slice(i + 1)] };
      default:
        return { g, rest: argv.slice(i) };
    }
  }
  return { g, rest: argv.slice(i) };
}

/** Is this a runc-style invocation? (The rule is spelled out in RUNC_USAGE.) */
export function isRuncInvocation(argv: string[]): boolean {
  let g: ReturnType<typeof parseGlobals>;
  try {
    g = parseGlobals(argv);
  } catch {
    return true; // a bad --log-format is only runc's
  }
  const [cmd, ...args] = g.rest;
  if (g.g.runcOnly) return true;
  if (!cmd) return false;
  if (RUNC_ONLY.has(cmd)) return true;
  if (cmd === "help" && args[0] === "runc") return true;
  if (cmd === "run") return g.g.runcOnly || args.some((a) => RUNC_RUN_FLAGS.test(a));
  // runc callers (podman) print `RUNTIME --version`: answer in runc's two-line form.
  return cmd === "--version" || cmd === "-v";
}

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function writeLog(g: Globals, level: "error" | "warning" | "debug", msg: string): void {
  if (!g.log) return;
  const time = new Date().toISOString();
  const line =
    g.logFormat === "json"
      ? JSON.stringify({ level, msg, time })
      : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
  try {
    fs.appendFileSync(g.log, `${line}\n`);
  } catch {
    // an unwritable log must not hide the error, which also goes to stderr
  }
}

type Command = (g: Globals, argv: string[]) => Promise<number>;

function parse<O extends Record<string, { type: "string" | "boolean"; short?: string }>>(
  argv: string[],
  options: O,
) {
  return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
}

function oneId(positionals: string[], usage: string): string {
  if (positionals.length < 1) throw new MoatError("EINVAL", `${usage}: give the container ID`);
  return validateId(positionals[0]);
}

async function loadSpec(bundle: string): Promise<Spec> {
  try {
    return JSON.parse(await fs.promises.readFile(path.join(bundle, "config.json"), "utf8")) as Spec;
  } catch (e) {
    throw new MoatError(
      "EINVAL",
      `${bundle}/config.json is not a readable runtime config (${(e as Error).message}): pass --bundle DIR of an OCI bundle`,
    );
  }
}

async function doCreate(
  g: Globals,
  id: string,
  bundleArg: string | undefined,
  pidFile?: string,
): Promise<number> {
  const bundle = path.resolve(bundleArg ?? ".");
  const spec = await loadSpec(bundle);
  if (!spec.root?.path || !spec.process) {
    throw new MoatError(
      "EINVAL",
      `${bundle}/config.json has no root.path or process: it is not a runnable bundle`,
    );
  }
  if (spec.process.terminal) {
    throw new MoatError(
      "ENOTSUP",
      "terminal not supported yet: moat cannot give a container a pty; set process.terminal to false",
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
  await createRecord(g.root, rec);
  let pid: number;
  try {
    pid = await spawnMonitor({
      root: g.root,
      id,
      ...(g.isolation ? { isolation: g.isolation } : {}),
      debug: g.debug,
    });
  } catch (e) {
    await forceDelete(g, id).catch(() => {});
    throw e;
  }
  if (pidFile) await writeFileAtomic(path.resolve(pidFile), String(pid));
  return pid;
}

const cmdCreate: Command = async (g, argv) => {
  const { values, positionals } = parse(argv, {
    bundle: { type: "string", short: "b" },
    "pid-file": { type: "string" },
    "console-socket": { type: "string" },
    "no-pivot": { type: "boolean" },
    "no-new-keyring": { type: "boolean" },
    "preserve-fds": { type: "string" },
  });
  const id = oneId(positionals, "usage: moat create --bundle DIR [--pid-file FILE] ID");
  if (values["console-socket"]) {
    throw new MoatError(
      "ENOTSUP",
      "terminal not supported yet: moat cannot give a container a pty (--console-socket); run it without a terminal",
    );
  }
  await doCreate(g, id, values.bundle, values["pid-file"]);
  return 0;
};

async function liveRecord(g: Globals, id: string): Promise<ContainerRecord> {
  return readRecord(g.root, id);
}

function fail(reply: { ok: boolean; error?: string; code?: string }): void {
  if (!reply.ok) throw new MoatError((reply.code ?? "EIO") as "EIO", reply.error ?? "the monitor refused");
}

async function doStart(g: Globals, id: string): Promise<void> {
  const rec = await liveRecord(g, id);
  const status = effectiveStatus(rec);
  if (status === "stopped") throw new MoatError("ESTATE", "cannot start a container that has stopped");
  if (status === "running") throw new MoatError("ESTATE", "cannot start an already running container");
  if (status !== "created") throw new MoatError("ESTATE", `cannot start a container in the ${status} state`);
  fail(await request(g.root, id, { op: "start" }));
}

const cmdStart: Command = async (g, argv) => {
  const { positionals } = parse(argv, {});
  await doStart(g, oneId(positionals, "usage: moat start ID"));
  return 0;
};

const cmdState: Command = async (g, argv) => {
  const { positionals } = parse(argv, {});
  const rec = await liveRecord(g, oneId(positionals, "usage: moat state ID"));
  process.stdout.write(`${JSON.stringify(toState(rec), null, 2)}\n`);
  return 0;
};

const cmdKill: Command = async (g, argv) => {
  const { values, positionals } = parse(argv, { all: { type: "boolean", short: "a" } });
  const id = oneId(positionals, "usage: moat kill [--all] ID [SIGNAL]");
  const signal = parseSignal(positionals[1] ?? "TERM");
  const rec = await liveRecord(g, id);
  if (effectiveStatus(rec) === "stopped") throw new MoatError("ESTATE", "container not running");
  try {
    fail(await request(g.root, id, { op: "kill", signal, ...(values.all ? { all: true } : {}) }));
  } catch (e) {
    if (isMoatError(e, "ECONNREFUSED")) throw new MoatError("ESTATE", "container not running");
    throw e;
  }
  return 0;
};

/** Kill whatever is left of the container, unmount what it mounted, run poststop, remove its state. */
async function forceDelete(g: Globals, id: string): Promise<void> {
  const dir = containerDir(g.root, id);
  const removeAll = async () => {
    let rec: ContainerRecord | undefined;
    try {
      rec = await readRecord(g.root, id);
    } catch {
      // no record (a create killed early): the directory alone is left
    }
    await killContainerProcesses(g.root, id, rec?.monitorPid);
    unmountAll(mountsUnder(dir));
    await fs.promises.rm(dir, { recursive: true, force: true });
    if (rec && rec.status !== "creating") {
      const spec = await loadSpec(rec.bundle).catch(() => undefined);
      await runHooks(spec?.hooks, "poststop", toState(rec, "stopped")).catch((e: Error) =>
        writeLog(g, "warning", e.message),
      );
    }
  };
  // A lock left by a killed invocation goes stale; --force must not wait on it forever.
  await withLock(g.root, id, removeAll).catch(async (e) => {
    if ((e as { code?: string }).code !== "ELOCKED") throw e;
    await removeAll();
    await fs.promises.rm(`${dir}.lock`, { recursive: true, force: true });
  });
}

const cmdDelete: Command = async (g, argv) => {
  const { values, positionals } = parse(argv, { force: { type: "boolean", short: "f" } });
  const id = oneId(positionals, "usage: moat delete [--force] ID");
  if (!fs.existsSync(containerDir(g.root, id))) {
    if (values.force) return 0;
    throw new MoatError("ENOENT", `container ${id} does not exist`);
  }
  if (!values.force) {
    const rec = await liveRecord(g, id);
    const status = effectiveStatus(rec);
    if (status === "running" || status === "creating") {
      throw new MoatError(
        "ESTATE",
        `cannot delete container ${id} that is not stopped: ${status} (stop it first, or use delete --force)`,
      );
    }
  }
  await forceDelete(g, id);
  return 0;
};

const cmdRun: Command = async (g, argv) => {
  const { values, positionals } = parse(argv, {
    bundle: { type: "string", short: "b" },
    "pid-file": { type: "string" },
    "console-socket": { type: "string" },
    detach: { type: "boolean", short: "d" },
    "no-pivot": { type: "boolean" },
    "no-new-keyring": { type: "boolean" },
    keep: { type: "boolean" },
  });
  const id = oneId(positionals, "usage: moat run --bundle DIR ID");
  if (values["console-socket"]) {
    throw new MoatError(
      "ENOTSUP",
      "terminal not supported yet: moat cannot give a container a pty (--console-socket)",
    );
  }
  await doCreate(g, id, values.bundle, values["pid-file"]);
  const forward = (sig: NodeJS.Signals) => {
    request(g.root, id, { op: "kill", signal: sig }).catch(() => {});
  };
  try {
    await doStart(g, id);
    if (values.detach) return 0;
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    return await waitExit(g, id);
  } finally {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    if (!values.detach && !values.keep) await forceDelete(g, id);
  }
};

/** The container's exit status: from the monitor while it lives, else from the record. */
async function waitExit(g: Globals, id: string): Promise<number> {
  try {
    const r = await request(g.root, id, { op: "wait" });
    fail(r);
    if (r.status !== undefined) return r.status;
  } catch (e) {
    if (!isMoatError(e, "ECONNREFUSED")) throw e;
  }
  // The monitor records the status before it closes its socket; give the write a moment.
  for (let i = 0; i < 40; i++) {
    const rec = await readRecord(g.root, id);
    if (rec.exitStatus !== undefined) return rec.exitStatus;
    if (effectiveStatus(rec) === "stopped" && i > 10) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new MoatError("EIO", `container ${id} ended but its monitor died before recording the exit status`);
}

const cmdList: Command = async (g, argv) => {
  const { values } = parse(argv, {
    format: { type: "string", short: "f" },
    quiet: { type: "boolean", short: "q" },
  });
  const states = [];
  for (const id of await listIds(g.root)) {
    try {
      states.push(toState(await readRecord(g.root, id)));
    } catch {
      // half-made or being deleted
    }
  }
  if (values.quiet) {
    for (const s of states) process.stdout.write(`${s.id}\n`);
  } else if (values.format === "json") {
    process.stdout.write(`${JSON.stringify(states)}\n`);
  } else if (!values.format || values.format === "table") {
    const rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]];
    for (const s of states) rows.push([s.id, String(s.pid), s.status, s.bundle, s.created, s.owner]);
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows)
      process.stdout.write(
        `${r
          .map((v, c) => v.padEnd(widths[c]!))
          .join("   ")
          .trimEnd()}\n`,
      );
  } else {
    throw new MoatError("EINVAL", `--format ${values.format}: use table or json`);
  }
  return 0;
};

const cmdPs: Command = async (g, argv) => {
  const { values, positionals } = parse(argv, { format: { type: "string", short: "f" } });
  const id = oneId(positionals, "usage: moat ps [--format json] ID");
  const rec = await liveRecord(g, id);
  const pids: number[] = [];
  if (effectiveStatus(rec) !== "stopped") {
    if (rec.monitorPid) pids.push(rec.monitorPid);
    if (rec.containerPid && rec.containerPid !== rec.monitorPid) pids.push(rec.containerPid);
  }
  if (values.format === "json") {
    process.stdout.write(`${JSON.stringify(pids)}\n`);
  } else if (!values.format || values.format === "table") {
    process.stdout.write("PID   CMD\n");
    for (const p of pids) {
      let cmd = "?";
      try {
        cmd = fs.readFileSync(`/proc/${p}/cmdline`, "latin1").split("\0").join(" ").trim();
      } catch {
        // exited meanwhile
      }
      process.stdout.write(`${String(p).padEnd(5)} ${cmd}\n`);
    }
  } else {
    throw new MoatError("EINVAL", `--format ${values.format}: use table or json`);
  }
  return 0;
};

/** The default bundle config runc spec writes, adjusted to what moat honours (no terminal yet). */
export function defaultSpec(): Spec {
  return {
    ociVersion: OciVersion,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ["sh"],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: "moat",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev"] },
    ],
    linux: {
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
    },
  };
}

const cmdSpec: Command = async (_g, argv) => {
  const { values } = parse(argv, { bundle: { type: "string", short: "b" }, rootless: { type: "boolean" } });
  const file = path.join(path.resolve(values.bundle ?? "."), "config.json");
  if (fs.existsSync(file)) throw new MoatError("EEXIST", `File ${file} exists. Remove it first`);
  await writeFileAtomic(file, `${JSON.stringify(defaultSpec(), null, "\t")}\n`);
  return 0;
};

const cmdFeatures: Command = async (_g, argv) => {
  parse(argv, {});
  const features = {
    ociVersionMin: "1.0.0",
    ociVersionMax: OciVersion,
    hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
    // Mounts are served by each sandbox's own kernel, which reads none of these host options.
    mountOptions: [],
    linux: {
      // Every container gets all of these, as a kernel of its own: the config cannot turn them off.
      namespaces: ["pid", "network", "ipc", "uts", "mount"],
      capabilities: [],
      cgroup: { v1: false, v2: false, systemd: false, systemdUser: false },
      seccomp: { enabled: false },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: {
      "run.moat.isolation": "vm | userkernel | auto: the isolation of this container",
      "run.moat.version": version(),
    },
  };
  process.stdout.write(`${JSON.stringify(features, null, 4)}\n`);
  return 0;
};

const COMMANDS: Record<string, Command> = {
  create: cmdCreate,
  start: cmdStart,
  state: cmdState,
  kill: cmdKill,
  delete: cmdDelete,
  run: cmdRun,
  list: cmdList,
  ps: cmdPs,
  spec: cmdSpec,
  features: cmdFeatures,
};

export async function runcMain(argv: string[]): Promise<number> {
  let g: Globals = { root: DEFAULT_STATE_ROOT, logFormat: "text", debug: false, runcOnly: true };
  try {
    const parsed = parseGlobals(argv);
    g = parsed.g;
    const [cmd, ...rest] = parsed.rest;
    if (g.debug) process.env.MOAT_DEBUG = "1";
    if (cmd === "--version" || cmd === "-v") {
      process.stdout.write(`moat version ${version()} (runc-compatible)\nspec: ${OciVersion}\n`);
      return 0;
    }
    if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
      process.stdout.write(RUNC_USAGE);
      return cmd ? 0 : 2;
    }
    const fn = COMMANDS[cmd];
    if (!fn) {
      throw new MoatError(
        "ENOTSUP",
        `"${cmd}" is not supported by moat's runc mode: run "moat help runc" for the commands`,
      );
    }
    return await fn(g, rest);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    writeLog(g, "error", msg);
    process.stderr.write(`moat: ${msg}\n`);
    if (g.debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}
