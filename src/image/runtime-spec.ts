// Derive an OCI runtime config.json from an image config, with the defaults runc's
// `runc spec` and Docker use (namespaces, mounts, masked paths, capabilities, rlimits).

import { CAPABILITIES } from "../spec/capabilities.js";
import { MoatError } from "../spec/errors.js";
import type { Image } from "../spec/image.js";
import {
  INIT_ANNOTATION,
  type Mount,
  OciVersion,
  type Rlimit,
  type Spec,
  type User,
} from "../spec/runtime.js";
import { readInRoot } from "./rootpath.js";

export const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Docker's default capability set: enough for ordinary programs, nothing that reaches the host. */
export const DEFAULT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

export const DEFAULT_MOUNTS: Mount[] = [
  { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
  {
    destination: "/dev",
    type: "tmpfs",
    source: "tmpfs",
    options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
  },
  {
    destination: "/dev/pts",
    type: "devpts",
    source: "devpts",
    options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
  },
  {
    destination: "/dev/shm",
    type: "tmpfs",
    source: "shm",
    options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
  },
  { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
  { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
  {
    destination: "/sys/fs/cgroup",
    type: "cgroup",
    source: "cgroup",
    options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
  },
  { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
];

export interface SpecOverrides {
  /** Replaces the image's Cmd (Entrypoint stays, as with `docker run IMAGE ARGS`). */
  args?: string[];
  entrypoint?: string[];
  env?: string[];
  cwd?: string;
  user?: string;
  terminal?: boolean;
  hostname?: string;
  readonlyRootfs?: boolean;
  /** linux.resources.pids.limit: the most tasks the container may have. */
  pidsLimit?: number;
  /** docker's --init: sets INIT_ANNOTATION, which the vm isolation honours. */
  init?: boolean;
  annotations?: Record<string, string>;
  /** More mounts (docker's -v, --mount, --tmpfs): one on a default mount's destination replaces it. */
  mounts?: Mount[];
  /** Capability names (CAP_ optional, any case) or "ALL", applied to the default set as docker does. */
  capAdd?: string[];
  capDrop?: string[];
  /** Replace the default limit of the same type, or add one. */
  rlimits?: Rlimit[];
  /** A seccomp profile (the runtime spec's linux.seccomp), already checked by the caller. */
  seccomp?: unknown;
  noNewPrivileges?: boolean;
  /**
   * moat run's container files, as docker makes them: /etc/hosts (localhost, the host name,
   * the extra hosts), /etc/hostname and, with dns servers, /etc/resolv.conf. createBundle
   * writes them in DIR/.moat and bind-mounts them writable (as docker does), so the image's
   * own stay untouched.
   */
  etcFiles?: { extraHosts?: { name: string; ip: string }[]; dns?: string[] };
}

/** Every capability the runtime spec names, in number order (what --cap-add ALL grants). */
export const ALL_CAPABILITIES = Object.entries(CAPABILITIES)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name);

/** "net_admin", "CAP_NET_ADMIN", "ALL": the runtime spec's name, or an error naming the bad one. */
export function capabilityName(text: string): string {
  const up = text.trim().toUpperCase();
  if (up === "ALL") return up;
  const name = up.startsWith("CAP_") ? up : `CAP_${up}`;
  if (CAPABILITIES[name] === undefined) {
    throw new MoatError(
      "EINVAL",
      `unknown capability "${text}": use names such as NET_ADMIN, CAP_SYS_TIME or ALL`,
    );
  }
  return name;
}

/** docker's --cap-add/--cap-drop on the default set: ALL in add starts from every capability, ALL in drop from none. */
export function applyCapabilities(add: readonly string[] = [], drop: readonly string[] = []): string[] {
  const adds = add.map(capabilityName);
  const drops = drop.map(capabilityName);
  let caps = adds.includes("ALL") ? [...ALL_CAPABILITIES] : [...DEFAULT_CAPABILITIES];
  caps = drops.includes("ALL") ? [] : caps.filter((c) => !drops.includes(c));
  for (const c of adds) if (c !== "ALL" && !caps.includes(c)) caps.push(c);
  return caps;
}

/** The default mounts with the caller's: one on the same destination replaces the default. */
function mergeMounts(extra: readonly Mount[]): Mount[] {
  const norm = (d: string) => d.replace(/\/+$/, "") || "/";
  const taken = new Set(extra.map((m) => norm(m.destination)));
  return [
    ...DEFAULT_MOUNTS.filter((m) => !taken.has(m.destination)).map((m) => ({
      ...m,
      options: [...(m.options ?? [])],
    })),
    ...extra,
  ];
}

export async function specFromImage(image: Image, rootfs: string, o: SpecOverrides = {}): Promise<Spec> {
  const cfg = image.config ?? {};
  const entrypoint = o.entrypoint ?? cfg.Entrypoint ?? [];
  const cmd = o.args && o.args.length > 0 ? o.args : (cfg.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) {
    throw new MoatError(
      "EINVAL",
      "the image has no Entrypoint or Cmd and no command was given: name the command to run",
    );
  }
  const hostname = o.hostname ?? "moat";
  // docker sets HOSTNAME (the image or -e may override it) and, when neither does, HOME from
  // the user's /etc/passwd entry ("/" without one).
  const base = [DEFAULT_PATH, `HOSTNAME=${hostname}`, ...(o.terminal ? ["TERM=xterm"] : [])];
  let env = mergeEnv(mergeEnv(base, cfg.Env ?? []), o.env ?? []);
  const userText = o.user ?? cfg.User ?? "";
  const user = await resolveUser(rootfs, userText);
  if (!env.some((e) => e.startsWith("HOME="))) env = [...env, `HOME=${await homeOf(rootfs, user.uid)}`];
  const caps = o.capAdd || o.capDrop ? applyCapabilities(o.capAdd, o.capDrop) : DEFAULT_CAPABILITIES;
  const rlimits: Rlimit[] = [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }];
  for (const r of o.rlimits ?? []) {
    const i = rlimits.findIndex((x) => x.type === r.type);
    if (i >= 0) rlimits[i] = r;
    else rlimits.push(r);
  }
  const annotations: Record<string, string> = { ...(cfg.Labels ?? {}) };
  if (cfg.ExposedPorts)
    annotations["org.opencontainers.image.exposedPorts"] = Object.keys(cfg.ExposedPorts).join(",");
  if (cfg.StopSignal) annotations["org.opencontainers.image.stopSignal"] = cfg.StopSignal;
  Object.assign(annotations, o.annotations ?? {});
  if (o.init) annotations[INIT_ANNOTATION] = "true";
  return {
    ociVersion: OciVersion,
    process: {
      terminal: o.terminal ?? false,
      user,
      args,
      env,
      cwd: o.cwd ?? (cfg.WorkingDir || "/"),
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits,
      noNewPrivileges: o.noNewPrivileges ?? true,
    },
    root: { path: "rootfs", readonly: o.readonlyRootfs ?? false },
    hostname,
    mounts: mergeMounts(o.mounts ?? []),
    annotations,
    linux: {
      namespaces: [
        { type: "pid" },
        { type: "network" },
        { type: "ipc" },
        { type: "uts" },
        { type: "mount" },
        { type: "cgroup" },
      ],
      maskedPaths: [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
      ...(o.seccomp !== undefined ? { seccomp: o.seccomp } : {}),
      ...(o.pidsLimit !== undefined ? { resources: { pids: { limit: o.pidsLimit } } } : {}),
    },
  };
}

/** Later entries win by variable name, keeping first-seen order. */
export function mergeEnv(base: string[], over: string[]): string[] {
  const out = [...base];
  for (const e of over) {
    const key = e.split("=")[0];
    const i = out.findIndex((x) => x.split("=")[0] === key);
    if (i >= 0) out[i] = e;
    else out.push(e);
  }
  return out;
}

/**
 * Resolve an image's User ("", "name", "uid", "name:group", "uid:gid") against the rootfs's
 * /etc/passwd and /etc/group, read inside the root. Additional groups come from /etc/group.
 */
export async function resolveUser(rootfs: string, spec: string): Promise<User> {
  if (!spec) return { uid: 0, gid: 0 };
  const [userPart, groupPart] = spec.split(":", 2) as [string, string | undefined];
  const passwd = parseColon(await readInRoot(rootfs, "/etc/passwd"));
  const groups = parseColon(await readInRoot(rootfs, "/etc/group"));
  let uid: number;
  let gid: number | undefined;
  let username: string | undefined;
  if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
    const row = passwd.find((r) => Number(r[2]) === uid);
    if (row) {
      gid = Number(row[3]);
      username = row[0];
    }
  } else {
    const row = passwd.find((r) => r[0] === userPart);
    if (!row) {
      throw new MoatError(
        "EINVAL",
        `user "${userPart}" is not in the image's /etc/passwd: use a numeric uid or add the user`,
      );
    }
    uid = Number(row[2]);
    gid = Number(row[3]);
    username = userPart;
  }
  if (groupPart !== undefined) {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const row = groups.find((r) => r[0] === groupPart);
      if (!row)
        throw new MoatError(
          "EINVAL",
          `group "${groupPart}" is not in the image's /etc/group: use a numeric gid`,
        );
      gid = Number(row[2]);
    }
  }
  const additionalGids = username
    ? groups.filter((r) => (r[3] ?? "").split(",").includes(username!)).map((r) => Number(r[2]))
    : [];
  const user: User = { uid, gid: gid ?? 0 };
  const extra = additionalGids.filter((g) => g !== user.gid);
  if (extra.length) user.additionalGids = extra;
  return user;
}

/** The home directory /etc/passwd gives this uid, or "/" (docker's fallback). */
async function homeOf(rootfs: string, uid: number): Promise<string> {
  const row = parseColon(await readInRoot(rootfs, "/etc/passwd")).find((r) => Number(r[2]) === uid);
  return row?.[5] || "/";
}

function parseColon(text: string | undefined): string[][] {
  return (text ?? "")
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => l.split(":"));
}
