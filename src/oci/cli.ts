// The runc-compatible OCI runtime CLI: `moat [GLOBAL FLAGS] create|start|state|kill|delete|
// run|list|spec|features|ps ...`, so podman (--runtime), conmon and other runc callers can
// drive moat. Each container is owned by a monitor process (monitor-main.ts); these commands
// are short-lived invocations that talk to it or read its state directory.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import writeFileAtomic from "write-file-atomic";
import { type IsolationChoice, parseIsolation } from "../isolation/index.js";
import { MoatError } from "../spec/errors.js";
import { OciVersion, type Process, type Spec } from "../spec/runtime.js";
import {
  type CreateOptions,
  containerState,
  createContainer,
  deleteContainer,
  type ExecProcess,
  execInContainer,
  killContainer,
  listContainers,
  ociState,
  pauseContainer,
  resumeContainer,
  startContainer,
  waitContainer,
} from "./api.js";
import { DEFAULT_STATE_ROOT, toState, validateId } from "./state.js";

export const RUNC_USAGE = `moat (runc-compatible OCI runtime mode)

usage: moat [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup]
            [--isolation vm|userkernel|auto] COMMAND [ARGS]

  create --bundle DIR [--pid-file FILE] [--console-socket SOCK] ID
                                             create a container; it waits for start
  start ID                                   run a created container's process
  state ID                                   print the state as JSON
  exec [--process FILE] [--detach] [--pid-file FILE] [--console-socket SOCK] [--tty]
       [--cwd DIR] [--env K=V]... [--user UID[:GID]] ID [CMD...]
                                             run another process in a running container
  kill [--all] ID [SIGNAL]                   signal it (default TERM; a name or a number);
                                             --all: the init and every exec
  pause ID / resume ID                       freeze and thaw it (vm isolation)
  delete [--force] ID                        remove it (--force kills it first)
  run --bundle DIR [--pid-file FILE] ID      create, start, wait and delete; exit with its status
  list [--format table|json] [-q]            list containers
  ps [--format table|json] ID                processes of a container
  spec [--bundle DIR]                        write a default config.json
  features                                   what this runtime honours, as JSON

--root is the state directory (default ${DEFAULT_STATE_ROOT}). Isolation: --isolation, else
$MOAT_ISOLATION, else the annotation "run.moat.isolation" in config.json, else the "isolation"
of /etc/moat/config.json ($MOAT_CONFIG), else auto.
The container's stdio is this command's stdio; the pid in --pid-file and in "state" is the
container's monitor process, which exits with the container's exit status.

How moat tells runc use from its own CLI: create, start, state, delete, list, spec,
features, pause and resume are always runc commands; kill, exec and ps are runc's unless
moat's own CLI claims them (a moat-only flag, a container of moat's own, or "ps" without an
ID). "run" is runc's when it is given --bundle/-b (or --pid-file, --detach/-d,
--console-socket), or when --log, --log-format or --systemd-cgroup come before it; otherwise
"run IMAGE [CMD...]" is moat's own.
`;

const RUNC_ONLY = new Set([
  "create",
  "start",
  "state",
  "kill",
  "delete",
  "list",
  "ps",
  "spec",
  "features",
  "exec",
  "pause",
  "resume",
]);
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

const cmdCreate: Command = async (g, argv) => {
  const { values, positionals } = parse(argv, {
    bundle: { type: "string", short: "b" },
    "pid-file": { type: "string" },
    "console-socket": { type: "string" },
    "no-pivot": { type: "boolean" },
    "no-new-keyring": { type: "boolean" },
    "preserve-fds": { type: "string" },
  });
  const id = oneId(
    positionals,
    "usage: moat create --bundle DIR [--pid-file FILE] [--console-socket SOCK] ID",
  );
  await createContainer(g.root, id, createOptions(g, values));
  return 0;
};

function createOptions(
  g: Globals,
  values: { bundle?: string; "pid-file"?: string; "console-socket"?: string },
): CreateOptions {
  return {
    bundle: values.bundle ?? ".",
    ...(g.isolation ? { isolation: g.isolation as IsolationChoice } : {}),
    debug: g.debug,
    ...(values["pid-file"] ? { pidFile: values["pid-file"] } : {}),
    ...(values["console-socket"] ? { consoleSocket: values["console-socket"] } : {}),
  };
}

const cmdStart: Command = async (g, argv) => {
  const { positionals } = parse(argv, {});
  await startContainer(g.root, oneId(positionals, "usage: moat start ID"));
  return 0;
};

const cmdState: Command = async (g, argv) => {
  const { positionals } = parse(argv, {});
  const st = await ociState(g.root, oneId(positionals, "usage: moat state ID"));
  process.stdout.write(`${JSON.stringify(st, null, 2)}\n`);
  return 0;
};

const cmdKill: Command = async (g, argv) => {
  const { values, positionals } = parse(argv, { all: { type: "boolean", short: "a" } });
  const id = oneId(positionals, "usage: moat kill [--all] ID [SIGNAL]");
  await killContainer(g.root, id, positionals[1] ?? "TERM", { all: Boolean(values.all) });
  return 0;
};

const cmdPause: Command = async (g, argv) => {
  const { positionals } = parse(argv, {});
  await pauseContainer(g.root, oneId(positionals, "usage: moat pause ID"));
  return 0;
};

const cmdResume: Command = async (g, argv) => {
  const { positionals } = parse(argv, {});
  await resumeContainer(g.root, oneId(positionals, "usage: moat resume ID"));
  return 0;
};

const cmdDelete: Command = async (g, argv) => {
  const { values, positionals } = parse(argv, { force: { type: "boolean", short: "f" } });
  const id = oneId(positionals, "usage: moat delete [--force] ID");
  await deleteContainer(g.root, id, {
    force: Boolean(values.force),
    onWarning: (msg) => writeLog(g, "warning", msg),
  });
  return 0;
};

/** runc exec --user: "UID" or "UID:GID" (numbers, as runc takes them). */
function parseUser(text: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(text);
  if (!m) throw new MoatError("EINVAL", `--user ${text}: use UID or UID:GID (numbers)`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? 0) };
}

const EXEC_OPTIONS = {
  process: { type: "string", short: "p" },
  detach: { type: "boolean", short: "d" },
  "pid-file": { type: "string" },
  "console-socket": { type: "string" },
  tty: { type: "boolean", short: "t" },
  cwd: { type: "string" },
  env: { type: "string", short: "e", multiple: true },
  user: { type: "string", short: "u" },
  "additional-gids": { type: "string", short: "g", multiple: true },
  "process-label": { type: "string" },
  apparmor: { type: "string" },
  "no-new-privs": { type: "boolean" },
  cap: { type: "string", short: "c", multiple: true },
  "preserve-fds": { type: "string" },
  cgroup: { type: "string", multiple: true },
  "ignore-paused": { type: "boolean" },
} as const;

/**
 * Split exec's arguments at the container ID: flags come before it, and everything after
 * it is the command, whose own flags (`sh -c ...`) must not be read as exec's.
 */
function splitAtId(argv: string[]): { flags: string[]; rest: string[] } {
  const takesValue = new Set<string>();
  for (const [name, o] of Object.entries(EXEC_OPTIONS)) {
    if (o.type === "string") {
      takesValue.add(`--${name}`);
      if ("short" in o) takesValue.add(`-${o.short}`);
    }
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return { flags: argv.slice(0, i), rest: argv.slice(i + 1) };
    if (!a.startsWith("-") || a === "-") return { flags: argv.slice(0, i), rest: argv.slice(i) };
    if (takesValue.has(a)) i++;
  }
  return { flags: argv, rest: [] };
}

const cmdExec: Command = async (g, argv) => {
  const split = splitAtId(argv);
  const { values } = parseArgs({
    args: split.flags,
    options: EXEC_OPTIONS,
    allowPositionals: false,
    strict: true,
  });
  const positionals = split.rest;
  const id = oneId(
    positionals,
    "usage: moat exec [--process FILE | ...] [--detach] [--pid-file F] ID [CMD...]",
  );
  let proc: ExecProcess | Process;
  let asIs = false;
  if (values.process) {
    try {
      proc = JSON.parse(await fs.promises.readFile(path.resolve(values.process), "utf8")) as Process;
    } catch (e) {
      throw new MoatError(
        "EINVAL",
        `--process ${values.process} is not a readable process JSON (${(e as Error).message})`,
      );
    }
    asIs = true;
  } else {
    const args = positionals.slice(1);
    if (args.length === 0)
      throw new MoatError("EINVAL", "exec: give the command to run after the ID, or --process FILE");
    let user: ExecProcess["user"];
    if (values.user) {
      user = parseUser(values.user);
      if (values["additional-gids"]?.length) {
        user.additionalGids = values["additional-gids"].map((x) => {
          if (!/^\d+$/.test(x)) throw new MoatError("EINVAL", `--additional-gids ${x}: use a number`);
          return Number(x);
        });
      }
    }
    proc = {
      args,
      ...(values.env ? { env: values.env } : {}),
      ...(values.cwd ? { cwd: values.cwd } : {}),
      ...(user ? { user } : {}),
      ...(values.tty ? { terminal: true } : {}),
    };
  }
  const r = await execInContainer(g.root, id, proc, {
    processAsIs: asIs,
    detach: Boolean(values.detach),
    forwardSignals: true,
    ...(values["pid-file"] ? { pidFile: values["pid-file"] } : {}),
    ...(values["console-socket"] ? { consoleSocket: values["console-socket"] } : {}),
  });
  return r.status ?? 0;
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
  await createContainer(g.root, id, createOptions(g, values));
  const forward = (sig: NodeJS.Signals) => {
    killContainer(g.root, id, sig).catch(() => {});
  };
  try {
    await startContainer(g.root, id);
    if (values.detach) return 0;
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    const status = await waitContainer(g.root, id);
    if (status === undefined) throw new MoatError("EIO", `container ${id} ended without an exit status`);
    return status;
  } finally {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    if (!values.detach && !values.keep) {
      await deleteContainer(g.root, id, { force: true, onWarning: (m) => writeLog(g, "warning", m) });
    }
  }
};

const cmdList: Command = async (g, argv) => {
  const { values } = parse(argv, {
    format: { type: "string", short: "f" },
    quiet: { type: "boolean", short: "q" },
  });
  const states = (await listContainers(g.root)).map((c) => toState(c, c.status));
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
  const rec = await containerState(g.root, id);
  const pids: number[] = [];
  if (rec.status !== "stopped") {
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
  exec: cmdExec,
  pause: cmdPause,
  resume: cmdResume,
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
