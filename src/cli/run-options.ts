// moat run's flags: one table (RUN) that the parser, `moat run --help` and the bash completion
// all read, and the checks that turn the flags into what a run needs: the bundle's spec
// overrides (so `run` and `run -d` get the same container), the sandbox's sizing, and the
// list of flags each isolation cannot honour yet, refused once the isolation is known.
import * as fs from "node:fs";
import { isIP } from "node:net";
import * as path from "node:path";
import { capabilityName, type SpecOverrides } from "../image/runtime-spec.js";
import { compileSeccomp, type SeccompProfile } from "../sandbox/seccomp.js";
import { parseSignal } from "../sandbox/signals.js";
import type { IsolationName } from "../sandbox/types.js";
import { MoatError } from "../spec/errors.js";
import type { Mount, Rlimit } from "../spec/runtime.js";
import { type CommandSpec, parseCommand, type Values } from "./flags.js";
import { STOP_SIGNAL_ANNOTATION, STOP_TIMEOUT_ANNOTATION } from "./lifecycle/stop-container.js";

export const RUN = {
  name: "run",
  args: "IMAGE|BUNDLE-DIR [CMD...]",
  summary:
    "Run a command in a new sandbox: its output is ours, its exit status ours (125 for moat's own errors, 126 for a command that cannot run, 127 for one not found, 128+N for a death by signal N).",
  group: "sandboxes",
  command: 1,
  min: 1,
  flags: {
    isolation: {
      type: "string",
      value: "vm|userkernel|auto",
      choices: ["vm", "userkernel", "auto"],
      help: "how the sandbox is isolated (default: auto, or MOAT_ISOLATION)",
    },
    detach: {
      type: "boolean",
      short: "d",
      help: "run in the background: print the id; output goes to its log",
    },
    name: { type: "string", value: "NAME", help: "name a detached container" },
    interactive: { type: "boolean", short: "i", help: "keep stdin open: the container reads it" },
    tty: { type: "boolean", short: "t", help: "give the container a terminal" },
    rm: { type: "boolean", help: "remove what the run made when it ends (the default for foreground runs)" },
    keep: { type: "boolean", help: "keep the bundle after a foreground run" },
    env: {
      type: "string",
      short: "e",
      multiple: true,
      value: "NAME[=VALUE]",
      help: "an environment variable; NAME alone takes this shell's value (left out if unset)",
    },
    "env-file": {
      type: "string",
      multiple: true,
      value: "FILE",
      help: "NAME=VALUE lines (NAME alone: this shell's value; # comments)",
    },
    workdir: { type: "string", short: "w", value: "DIR", help: "the working directory" },
    user: { type: "string", short: "u", value: "USER[:GROUP]", help: "the user to run as (name or uid)" },
    entrypoint: { type: "string", value: "CMD", help: 'replace the image\'s entrypoint ("" clears it)' },
    hostname: { type: "string", value: "NAME", help: "the container's host name" },
    "add-host": {
      type: "string",
      multiple: true,
      value: "NAME:IP",
      help: "a line in the container's /etc/hosts",
    },
    dns: {
      type: "string",
      multiple: true,
      value: "IP",
      help: "a nameserver in the container's /etc/resolv.conf",
    },
    label: {
      type: "string",
      short: "l",
      multiple: true,
      value: "KEY=VALUE",
      help: "an annotation on the container",
    },
    volume: {
      type: "string",
      short: "v",
      multiple: true,
      value: "SRC:DEST[:ro|rw]",
      help: "bind-mount an absolute host path, or a named volume (made under ROOT/volumes)",
    },
    mount: {
      type: "string",
      multiple: true,
      value: "type=bind|volume|tmpfs,...",
      help: "a mount: source=, target=, readonly (tmpfs: tmpfs-size=, tmpfs-mode=)",
    },
    tmpfs: {
      type: "string",
      multiple: true,
      value: "PATH[:OPTS]",
      help: "a fresh tmpfs (OPTS: size=64m,mode=1777,...)",
    },
    "read-only": { type: "boolean", help: "a read-only root file system" },
    ulimit: {
      type: "string",
      multiple: true,
      value: "NAME=SOFT[:HARD]",
      help: "a resource limit (nofile, nproc, core, ...)",
    },
    "pids-limit": { type: "string", value: "N", help: "the most processes the container may have" },
    "cap-add": { type: "string", multiple: true, value: "CAP", help: "add a capability (or ALL)" },
    "cap-drop": { type: "string", multiple: true, value: "CAP", help: "drop a capability (or ALL)" },
    "security-opt": {
      type: "string",
      multiple: true,
      value: "OPT",
      help: "seccomp=FILE, seccomp=unconfined or no-new-privileges",
    },
    "stop-signal": {
      type: "string",
      value: "SIGNAL",
      help: "the signal moat kill sends first (default TERM)",
    },
    "stop-timeout": {
      type: "string",
      value: "SECONDS",
      help: "moat kill's grace period before KILL (default 10)",
    },
    init: { type: "boolean", help: "a tiny init as PID 1 that forwards signals and reaps (vm only)" },
    memory: { type: "string", short: "m", value: "SIZE", help: "the sandbox's memory, e.g. 512m or 2g" },
    cpus: { type: "string", value: "N", help: "the sandbox's cpus (a whole number)" },
    network: {
      type: "string",
      value: "nat|none",
      choices: ["nat", "none"],
      help: "user-mode NAT (default) or no network",
    },
    publish: {
      type: "string",
      short: "p",
      multiple: true,
      value: "HOST:GUEST",
      help: "forward host port HOST on 127.0.0.1 to the sandbox's port GUEST",
    },
  },
  details:
    'IMAGE is a name from `moat images` ("default" is the built-in busybox image), or the path of an\nOCI bundle directory (with a config.json), which runs as it is.',
} as const satisfies CommandSpec;

export type RunValues = Values<(typeof RUN)["flags"]>;

/**
 * The annotations moat kill/stop read: the signal sent first (before the image's own
 * org.opencontainers.image.stopSignal) and the grace before KILL.
 */
export { STOP_SIGNAL_ANNOTATION, STOP_TIMEOUT_ANNOTATION } from "./lifecycle/stop-container.js";

/** Named volumes live here, one directory each, made on first use. */
export const volumesDir = (root: string) => path.join(root, "volumes");

/** "512", "512m", "2g" -> MiB. */
export function parseMemory(text: string): number {
  const m = /^(\d+)([mg]?)i?b?$/i.exec(text.trim());
  if (!m) throw new MoatError("EINVAL", `--memory "${text}" is not a size: use e.g. 512m or 2g`);
  const n = Number(m[1]) * (m[2]?.toLowerCase() === "g" ? 1024 : 1);
  if (n < 64) throw new MoatError("EINVAL", `--memory ${text} is too small: a sandbox needs at least 64m`);
  return n;
}

/** "--network nat|none": the sandbox's network (vm: user-mode NAT through passt, with the host's loopback out of reach; or no NIC). */
export function parseNetwork(text: string): "nat" | "none" {
  if (text === "nat" || text === "none") return text;
  throw new MoatError("EINVAL", `--network "${text}" is not a network: use nat (the default) or none`);
}

/** "-p 8080:80": host port 8080 on 127.0.0.1 forwarded to port 80 in the sandbox. */
export function parsePortForward(text: string): { host: number; guest: number } {
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(text.trim());
  const host = Number(m?.[1]);
  const guest = Number(m?.[2]);
  if (!m || host < 1 || host > 65535 || guest < 1 || guest > 65535) {
    throw new MoatError(
      "EINVAL",
      `-p "${text}" is not a port forward: use HOST:GUEST with TCP ports from 1 to 65535, e.g. -p 8080:80`,
    );
  }
  return { host, guest };
}

const ENV_NAME = /^[^=\0]+$/;

/**
 * docker's -e: NAME=VALUE as given; NAME alone takes this process's value, and is left out
 * when it has none. An empty name ("=x") is refused.
 */
export function resolveEnv(entries: readonly string[], hostEnv: NodeJS.ProcessEnv, where = "-e"): string[] {
  const out: string[] = [];
  for (const e of entries) {
    const eq = e.indexOf("=");
    const name = eq < 0 ? e : e.slice(0, eq);
    if (!ENV_NAME.test(name) || /\s/.test(name)) {
      throw new MoatError(
        "EINVAL",
        `${where} "${e}" has no variable name: use NAME=VALUE, or NAME to pass this shell's value`,
      );
    }
    if (eq >= 0) out.push(e);
    else if (hostEnv[name] !== undefined) out.push(`${name}=${hostEnv[name]}`);
  }
  return out;
}

/** docker's --env-file: one NAME=VALUE (or NAME) a line, blank lines and # comments skipped. */
export function readEnvFile(file: string, hostEnv: NodeJS.ProcessEnv): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new MoatError("ENOENT", `--env-file ${file}: ${(e as Error).message}`, { cause: e });
  }
  const lines: string[] = [];
  for (const [n, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/^\s+/, "");
    if (line === "" || line.startsWith("#")) continue;
    lines.push(...resolveEnv([line], hostEnv, `--env-file ${file} line ${n + 1}:`));
  }
  return lines;
}

function isVolumeName(s: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(s);
}

function checkTarget(target: string, what: string): string {
  if (!target.startsWith("/")) {
    throw new MoatError("EINVAL", `${what}: the container path "${target}" must be absolute, e.g. /data`);
  }
  return target;
}

/** A bind source: an absolute host path that exists, or a named volume made under ROOT/volumes. */
function bindSource(root: string, source: string, what: string): string {
  if (source.startsWith("/")) {
    if (!fs.existsSync(source)) {
      throw new MoatError("ENOENT", `${what}: ${source} does not exist on this host: create it first`);
    }
    return source;
  }
  if (!isVolumeName(source)) {
    throw new MoatError(
      "EINVAL",
      `${what}: "${source}" is neither an absolute host path nor a volume name (letters, digits, _ . -)`,
    );
  }
  // Made by makeVolumes once the run is sure to go ahead: a refused run leaves nothing.
  return path.join(volumesDir(root), source);
}

function bindMount(source: string, destination: string, readonly: boolean): Mount {
  return { destination, type: "bind", source, options: ["rbind", "rprivate", readonly ? "ro" : "rw"] };
}

/** -v SRC:DEST[:ro|rw] */
export function parseVolume(root: string, text: string): Mount {
  const parts = text.split(":");
  const what = `-v ${text}`;
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
    throw new MoatError(
      "EINVAL",
      `${what}: use HOST-PATH:CONTAINER-PATH[:ro|rw] or VOLUME:CONTAINER-PATH[:ro|rw]`,
    );
  }
  const mode = parts[2] ?? "rw";
  if (mode !== "ro" && mode !== "rw")
    throw new MoatError("EINVAL", `${what}: the mode is ro or rw, not "${mode}"`);
  const dest = checkTarget(parts[1], what);
  return bindMount(bindSource(root, parts[0], what), dest, mode === "ro");
}

const TMPFS_OPTION =
  /^(size=\d+[kmg%]?|mode=[0-7]{1,4}|nr_inodes=\d+[kmg]?|ro|rw|noexec|exec|nosuid|suid|nodev|dev)$/;

function tmpfsMount(destination: string, opts: string[], what: string): Mount {
  for (const o of opts) {
    if (!TMPFS_OPTION.test(o)) {
      throw new MoatError(
        "EINVAL",
        `${what}: "${o}" is not a tmpfs option moat passes on (size=, mode=, nr_inodes=, ro, noexec, ...)`,
      );
    }
  }
  const base = ["nosuid", "nodev"].filter((b) => !opts.includes(b.replace(/^no/, "")));
  return { destination, type: "tmpfs", source: "tmpfs", options: [...base, ...opts] };
}

/** --tmpfs PATH[:size=64m,mode=1777] */
export function parseTmpfs(text: string): Mount {
  const i = text.indexOf(":");
  const dest = checkTarget(i < 0 ? text : text.slice(0, i), `--tmpfs ${text}`);
  const opts =
    i < 0
      ? []
      : text
          .slice(i + 1)
          .split(",")
          .filter(Boolean);
  return tmpfsMount(dest, opts, `--tmpfs ${text}`);
}

/** --mount type=bind|volume|tmpfs,source=...,target=...,readonly */
export function parseMountFlag(root: string, text: string): Mount {
  const what = `--mount ${text}`;
  const kv = new Map<string, string>();
  for (const part of text.split(",")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    kv.set(eq < 0 ? part : part.slice(0, eq), eq < 0 ? "true" : part.slice(eq + 1));
  }
  const get = (...names: string[]) => names.map((n) => kv.get(n)).find((v) => v !== undefined);
  const type = get("type") ?? "volume";
  const target = get("target", "destination", "dst");
  if (!target) throw new MoatError("EINVAL", `${what}: say where it goes with target=/path`);
  const ro = get("readonly", "ro");
  const readonly = ro !== undefined && ro !== "false" && ro !== "0";
  const known = new Set(["type", "target", "destination", "dst", "source", "src", "readonly", "ro"]);
  if (type === "tmpfs") {
    for (const k of kv.keys()) {
      if (!known.has(k) && k !== "tmpfs-size" && k !== "tmpfs-mode")
        throw new MoatError("EINVAL", `${what}: unknown option "${k}" for a tmpfs mount`);
    }
    if (get("source", "src")) throw new MoatError("EINVAL", `${what}: a tmpfs mount takes no source`);
    const size = kv.get("tmpfs-size");
    const mode = kv.get("tmpfs-mode");
    return tmpfsMount(
      checkTarget(target, what),
      [...(size ? [`size=${size}`] : []), ...(mode ? [`mode=${mode}`] : []), ...(readonly ? ["ro"] : [])],
      what,
    );
  }
  if (type !== "bind" && type !== "volume") {
    throw new MoatError("EINVAL", `${what}: type is bind, volume or tmpfs, not "${type}"`);
  }
  for (const k of kv.keys()) {
    if (!known.has(k)) throw new MoatError("EINVAL", `${what}: unknown option "${k}" for a ${type} mount`);
  }
  const source = get("source", "src");
  if (!source) throw new MoatError("EINVAL", `${what}: a ${type} mount needs source=`);
  if (type === "bind" && !source.startsWith("/"))
    throw new MoatError("EINVAL", `${what}: a bind mount's source is an absolute host path`);
  if (type === "volume" && source.startsWith("/"))
    throw new MoatError("EINVAL", `${what}: a volume's source is its name; for a host path use type=bind`);
  return bindMount(bindSource(root, source, what), checkTarget(target, what), readonly);
}

const ULIMITS = new Set([
  "as",
  "core",
  "cpu",
  "data",
  "fsize",
  "locks",
  "memlock",
  "msgqueue",
  "nice",
  "nofile",
  "nproc",
  "rss",
  "rtprio",
  "rttime",
  "sigpending",
  "stack",
]);

/** --ulimit nofile=1024[:2048] */
export function parseUlimit(text: string): Rlimit {
  const m = /^([a-z]+)=(\d+)(?::(\d+))?$/.exec(text.trim());
  if (!m || !ULIMITS.has(m[1]!)) {
    throw new MoatError(
      "EINVAL",
      `--ulimit ${text}: use NAME=SOFT[:HARD] with whole numbers, NAME one of ${[...ULIMITS].join(", ")}`,
    );
  }
  const soft = Number(m[2]);
  const hard = m[3] !== undefined ? Number(m[3]) : soft;
  if (soft > hard) throw new MoatError("EINVAL", `--ulimit ${text}: the soft limit is above the hard one`);
  return { type: `RLIMIT_${m[1]!.toUpperCase()}`, soft, hard };
}

/** --add-host NAME:IP (docker also takes NAME=IP). */
export function parseAddHost(text: string): { name: string; ip: string } {
  const i = text.search(/[:=]/);
  const name = i < 0 ? "" : text.slice(0, i);
  const ip = i < 0 ? "" : text.slice(i + 1).replace(/^\[(.*)\]$/, "$1");
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(name) || !isIP(ip)) {
    throw new MoatError("EINVAL", `--add-host ${text}: use NAME:IP, e.g. --add-host db:10.0.0.5`);
  }
  return { name, ip };
}

export interface SecurityOpts {
  seccomp?: unknown;
  seccompFile?: string;
  unconfined?: boolean;
  noNewPrivileges?: boolean;
}

/** --security-opt seccomp=FILE|unconfined, no-new-privileges[=true|false] */
export function parseSecurityOpts(list: readonly string[]): SecurityOpts {
  const out: SecurityOpts = {};
  for (const text of list) {
    const eq = text.search(/[=:]/);
    const key = eq < 0 ? text : text.slice(0, eq);
    const value = eq < 0 ? undefined : text.slice(eq + 1);
    if (key === "no-new-privileges") {
      if (value !== undefined && value !== "true" && value !== "false")
        throw new MoatError("EINVAL", `--security-opt ${text}: no-new-privileges takes true or false`);
      out.noNewPrivileges = value !== "false";
    } else if (key === "seccomp" && value) {
      if (value === "unconfined") {
        out.unconfined = true;
        continue;
      }
      let profile: unknown;
      try {
        profile = JSON.parse(fs.readFileSync(value, "utf8"));
      } catch (e) {
        throw new MoatError(
          "EINVAL",
          `--security-opt seccomp=${value}: not a readable JSON profile (${(e as Error).message})`,
          {
            cause: e,
          },
        );
      }
      // Compiled here only to find a bad profile before anything is made.
      try {
        compileSeccomp(profile as SeccompProfile);
      } catch (e) {
        throw new MoatError("EINVAL", `--security-opt seccomp=${value}: ${(e as Error).message}`, {
          cause: e,
        });
      }
      out.seccomp = profile;
      out.seccompFile = value;
    } else {
      throw new MoatError(
        "EINVAL",
        `--security-opt ${text} is not one moat applies: use seccomp=FILE, seccomp=unconfined or no-new-privileges`,
      );
    }
  }
  if (out.unconfined && out.seccomp !== undefined)
    throw new MoatError(
      "EINVAL",
      "--security-opt seccomp=unconfined and seccomp=FILE contradict each other: give one",
    );
  return out;
}

function wholeNumber(text: string, flag: string, min: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min) {
    throw new MoatError("EINVAL", `${flag} ${text} is not a whole number of at least ${min}`);
  }
  return n;
}

export interface RunPlan {
  values: RunValues;
  target: string;
  command: string[];
  memoryMiB?: number;
  cpus?: number;
  network?: "nat" | "none";
  ports: { host: number; guest: number }[];
  /** What the bundle is made with: the same for `run` and `run -d`. */
  bundle: SpecOverrides;
}

/** Parse and check moat run's command line. `root` is the store's, for named volumes. */
export function parseRun(argv: string[], root: string, hostEnv: NodeJS.ProcessEnv = process.env): RunPlan {
  const { values, positionals, command } = parseCommand(RUN, argv);
  const target = positionals[0]!;
  const memoryMiB = values.memory !== undefined ? parseMemory(values.memory) : undefined;
  const cpus = values.cpus !== undefined ? Number(values.cpus) : undefined;
  if (cpus !== undefined && !(Number.isInteger(cpus) && cpus >= 1 && cpus <= 64)) {
    throw new MoatError("EINVAL", `--cpus ${values.cpus} is not a whole number from 1 to 64`);
  }
  const network = values.network !== undefined ? parseNetwork(values.network) : undefined;
  const ports = (values.publish ?? []).map(parsePortForward);
  if (network === "none" && ports.length > 0) {
    throw new MoatError("EINVAL", "-p needs a network: drop --network none or the -p options");
  }
  const env = [
    ...(values["env-file"] ?? []).flatMap((f) => readEnvFile(f, hostEnv)),
    ...resolveEnv(values.env ?? [], hostEnv),
  ];
  const annotations: Record<string, string> = {};
  for (const l of values.label ?? []) {
    const eq = l.indexOf("=");
    if (eq === 0) throw new MoatError("EINVAL", `--label "${l}" has no key: use KEY=VALUE`);
    annotations[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? "" : l.slice(eq + 1);
  }
  if (values["stop-signal"] !== undefined) {
    parseSignal(values["stop-signal"]);
    annotations[STOP_SIGNAL_ANNOTATION] = values["stop-signal"];
  }
  if (values["stop-timeout"] !== undefined) {
    annotations[STOP_TIMEOUT_ANNOTATION] = String(wholeNumber(values["stop-timeout"], "--stop-timeout", 0));
  }
  const pidsLimit =
    values["pids-limit"] !== undefined ? wholeNumber(values["pids-limit"], "--pids-limit", 1) : undefined;
  const mounts: Mount[] = [
    ...(values.volume ?? []).map((v) => parseVolume(root, v)),
    ...(values.mount ?? []).map((m) => parseMountFlag(root, m)),
    ...(values.tmpfs ?? []).map(parseTmpfs),
  ];
  const seen = new Set<string>();
  for (const m of mounts) {
    if (seen.has(m.destination))
      throw new MoatError("EINVAL", `two mounts on ${m.destination}: give each container path once`);
    seen.add(m.destination);
  }
  const security = parseSecurityOpts(values["security-opt"] ?? []);
  for (const c of [...(values["cap-add"] ?? []), ...(values["cap-drop"] ?? [])]) capabilityName(c);
  const extraHosts = (values["add-host"] ?? []).map(parseAddHost);
  for (const ip of values.dns ?? []) {
    if (!isIP(ip)) throw new MoatError("EINVAL", `--dns ${ip} is not an IP address`);
  }
  const entrypoint =
    values.entrypoint === undefined ? undefined : values.entrypoint === "" ? [] : [values.entrypoint];
  const bundle: RunPlan["bundle"] = {
    ...(command.length ? { args: command } : {}),
    ...(entrypoint ? { entrypoint } : {}),
    ...(env.length ? { env } : {}),
    ...(values.workdir ? { cwd: values.workdir } : {}),
    ...(values.user ? { user: values.user } : {}),
    ...(values.hostname ? { hostname: values.hostname } : {}),
    ...(values.tty ? { terminal: true } : {}),
    ...(values["read-only"] ? { readonlyRootfs: true } : {}),
    ...(pidsLimit !== undefined ? { pidsLimit } : {}),
    ...(values.init ? { init: true } : {}),
    ...(Object.keys(annotations).length ? { annotations } : {}),
    ...(mounts.length ? { mounts } : {}),
    ...(values["cap-add"] ? { capAdd: values["cap-add"] } : {}),
    ...(values["cap-drop"] ? { capDrop: values["cap-drop"] } : {}),
    ...(values.ulimit ? { rlimits: values.ulimit.map(parseUlimit) } : {}),
    ...(security.seccomp !== undefined ? { seccomp: security.seccomp } : {}),
    ...(security.noNewPrivileges !== undefined ? { noNewPrivileges: security.noNewPrivileges } : {}),
    etcFiles: {
      ...(extraHosts.length ? { extraHosts } : {}),
      ...(values.dns?.length ? { dns: values.dns } : {}),
    },
  };
  return {
    values,
    target,
    command,
    ...(memoryMiB !== undefined ? { memoryMiB } : {}),
    ...(cpus !== undefined ? { cpus } : {}),
    ...(network ? { network } : {}),
    ports,
    bundle,
  };
}

/**
 * The flags an isolation cannot honour yet, each with why: refused once the isolation is
 * known, never silently dropped. (vm: the guest agent and moat-creds apply rlimits,
 * capabilities, no_new_privs, seccomp, a read-only root, pids.max and --init; the
 * userkernel applies rlimits and a read-only root only.)
 */
export function unsupportedFlags(plan: RunPlan, isolation: IsolationName): string[] {
  const v = plan.values;
  const both: string[] = [];
  if (isolation === "vm") return both;
  const uk = "is not applied by the userkernel yet: use --isolation vm";
  if (v.init)
    both.push(
      "--init: the userkernel has no init to put in front of the command yet: use --isolation vm, or run one from the image (e.g. sh -c '... & wait')",
    );
  // Its processes are not tasks of a cgroup, and its kernel keeps no count to limit yet.
  if (v["pids-limit"] !== undefined) both.push(`--pids-limit ${uk}`);
  if (v["cap-add"] || v["cap-drop"]) both.push(`--cap-add/--cap-drop ${uk}`);
  if (plan.bundle.seccomp !== undefined) both.push(`--security-opt seccomp ${uk}`);
  return both;
}

/** Make the named volumes the run's mounts use (ROOT/volumes/NAME), on first use. */
export function makeVolumes(plan: RunPlan, root: string): void {
  for (const m of plan.bundle.mounts ?? []) {
    if (m.type === "bind" && m.source && path.dirname(m.source) === volumesDir(root)) {
      fs.mkdirSync(volumesDir(root), { recursive: true, mode: 0o700 });
      fs.mkdirSync(m.source, { recursive: true, mode: 0o755 });
    }
  }
}

/** Refuse what the chosen isolation cannot do, naming every such flag. */
export function refuseUnsupported(plan: RunPlan, isolation: IsolationName): void {
  const list = unsupportedFlags(plan, isolation);
  if (list.length) throw new MoatError("ENOTSUP", list.join("; "));
}
