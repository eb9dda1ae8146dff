// The runtime spec's mounts as the vm isolation can apply them. The host plans them (which
// entries the guest already provides, which it must make, which moat cannot do) and the
// guest checks the plan again before it mounts anything, so both sides share these rules.
// Kinds: host files and directories bind-mounted through the volume share ("bind"), fresh
// tmpfs, sysfs and mqueue instances, and the container's own cgroup ("cgroup", a bind of
// its cgroup v2 directory). /proc, /dev and /dev/pts are laid out by the guest itself.
import { posix } from "node:path";
import { MoatError } from "../spec/errors.js";
import type { Mount } from "../spec/runtime.js";
import type { MountSpec } from "./protocol.js";

/** The mount types the guest agent makes, as they travel in `MountSpec.type`. */
export const GUEST_MOUNT_TYPES = ["bind", "tmpfs", "sysfs", "mqueue", "cgroup"] as const;
export type GuestMountType = (typeof GUEST_MOUNT_TYPES)[number];

/** What the guest lays out for every container, so a spec entry for it needs no work. */
const PROVIDED: ReadonlyArray<{ type: string; destination: string }> = [
  { type: "proc", destination: "/proc" },
  { type: "tmpfs", destination: "/dev" },
  { type: "devpts", destination: "/dev/pts" },
];

const FLAGS = new Set([
  "ro",
  "rw",
  "nosuid",
  "suid",
  "nodev",
  "dev",
  "noexec",
  "exec",
  "noatime",
  "atime",
  "relatime",
  "norelatime",
  "strictatime",
  "nodiratime",
  "sync",
  "dirsync",
  "lazytime",
]);
/** Propagation and the bind markers: meaningless inside the guest's private mount tree. */
const IGNORED = new Set([
  "bind",
  "rbind",
  "private",
  "rprivate",
  "shared",
  "rshared",
  "slave",
  "rslave",
  "unbindable",
  "runbindable",
]);
/** tmpfs's own options, with the values moat passes on. */
const TMPFS_DATA: Record<string, RegExp> = {
  size: /^[0-9]+[kmgKMG%]?$/,
  nr_inodes: /^[0-9]+[kmgKMG%]?$/,
  nr_blocks: /^[0-9]+[kmgKMG]?$/,
  mode: /^[0-7]{1,4}$/,
  uid: /^[0-9]{1,10}$/,
  gid: /^[0-9]{1,10}$/,
};
const FOR_FLAGS_ONLY = new Set(["sysfs", "mqueue", "cgroup", "bind"]);

export interface PlannedMount {
  /** Normalised absolute path inside the container. */
  readonly destination: string;
  readonly type: GuestMountType;
  /** Host path of a bind's source; absent for the other kinds. */
  readonly hostSource?: string;
  /** Canonical options (flags, then tmpfs data); "ro" when read-only. */
  readonly options: string[];
  readonly readonly: boolean;
  /** rbind: the source's submounts come along. */
  readonly recursive: boolean;
  /** tmpfs "tmpcopyup" (podman's --tmpfs): the tmpfs starts with what the image had there. */
  readonly copyUp: boolean;
}

function isBind(m: Mount): boolean {
  const o = m.options ?? [];
  return m.type === "bind" || o.includes("bind") || o.includes("rbind");
}

function checkDestination(d: unknown, what: string): string {
  if (typeof d !== "string" || !d.startsWith("/") || d.includes("\0")) {
    throw new MoatError("EINVAL", `${what}: the destination must be an absolute path inside the container`);
  }
  const n = posix.normalize(d).replace(/\/+$/, "");
  if (n === "" || n === "/") {
    throw new MoatError("EINVAL", `${what}: nothing can be mounted over the container's root`);
  }
  return n;
}

/** Options in canonical order; rejects what moat would otherwise silently drop. */
function canonicalOptions(type: GuestMountType, options: readonly string[], what: string): string[] {
  let ro = false;
  const flags: string[] = [];
  const data: string[] = [];
  for (const o of options) {
    if (typeof o !== "string") throw new MoatError("EINVAL", `${what}: mount options must be strings`);
    if (o === "ro" || o === "rw") {
      ro = o === "ro";
      continue;
    }
    if (IGNORED.has(o)) continue;
    if (type === "tmpfs" && (o === "tmpcopyup" || o === "notmpcopyup")) continue;
    if (FLAGS.has(o)) {
      if (!flags.includes(o)) flags.push(o);
      continue;
    }
    const eq = o.indexOf("=");
    const key = eq > 0 ? o.slice(0, eq) : o;
    const check = TMPFS_DATA[key];
    if (type === "tmpfs" && check && eq > 0) {
      if (!check.test(o.slice(eq + 1)))
        throw new MoatError("EINVAL", `${what}: option "${o}" has a value tmpfs does not take`);
      data.push(o);
      continue;
    }
    throw new MoatError(
      "EINVAL",
      `${what}: option "${o}" is not one moat can apply to a ${type} mount` +
        (FOR_FLAGS_ONLY.has(type) ? " (ro/rw, nosuid, nodev, noexec, atime flags, propagation)" : ""),
    );
  }
  return [...(ro ? ["ro"] : []), ...flags, ...data];
}

/**
 * The plan for one spec mount: what the guest must do, or null when the guest already
 * provides it. Throws ENOTSUP for a mount moat cannot make rather than ignore it.
 */
export function planMount(m: Mount, index: number): PlannedMount | null {
  const what = `mount ${index} (${String(m.destination)})`;
  const destination = checkDestination(m.destination, what);
  if (isBind(m)) {
    const src = m.source;
    if (typeof src !== "string" || !src.startsWith("/")) {
      throw new MoatError("EINVAL", `${what}: a bind mount needs an absolute host path as its source`);
    }
    const options = canonicalOptions("bind", m.options ?? [], what);
    return {
      destination,
      type: "bind",
      hostSource: src,
      options,
      readonly: options.includes("ro"),
      recursive: (m.options ?? []).includes("rbind"),
      copyUp: false,
    };
  }
  const type = m.type ?? "";
  if (PROVIDED.some((p) => p.type === type && p.destination === destination)) return null;
  const kind: GuestMountType | undefined =
    type === "tmpfs" || type === "sysfs" || type === "mqueue"
      ? type
      : type === "cgroup" || type === "cgroup2"
        ? "cgroup"
        : undefined;
  if (!kind) {
    const where = PROVIDED.find((p) => p.type === type);
    throw new MoatError(
      "ENOTSUP",
      where
        ? `${what}: the vm isolation provides ${type} only at ${where.destination}`
        : `${what}: mount type "${type || "(none)"}" is not supported by the vm isolation; it mounts ` +
            'host files and directories ("bind"), tmpfs, sysfs, mqueue and cgroup, and provides ' +
            "proc, /dev and devpts itself: drop this mount or use one of those",
    );
  }
  if (kind === "mqueue" && destination !== "/dev/mqueue") {
    throw new MoatError("ENOTSUP", `${what}: the vm isolation mounts mqueue only at /dev/mqueue`);
  }
  const options = canonicalOptions(kind, m.options ?? [], what);
  const up = kind === "tmpfs" && copyUp(m.options ?? []);
  return {
    destination,
    type: kind,
    options: [...options, ...(up ? ["tmpcopyup"] : [])],
    readonly: options.includes("ro"),
    recursive: false,
    copyUp: up,
  };
}

/** The last of tmpcopyup/notmpcopyup wins; neither: no copy, as runc does. */
function copyUp(options: readonly string[]): boolean {
  return options.filter((o) => o === "tmpcopyup" || o === "notmpcopyup").pop() === "tmpcopyup";
}

/** Every mount the guest must make, in the spec's order. */
export function planMounts(mounts: readonly Mount[] | undefined): PlannedMount[] {
  const out: PlannedMount[] = [];
  for (const [i, m] of (mounts ?? []).entries()) {
    const p = planMount(m, i);
    if (p) out.push(p);
  }
  return out;
}

/** A bind source on the volume share: "<container id>/<n>", nothing that could climb out. */
export const VOLUME_SOURCE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\/[0-9]{1,6}$/;

/**
 * The guest's check of one request entry: the same rules the host planned with, so a
 * mount the host would not plan is refused here too. Returns the canonical plan.
 */
export function checkMountSpec(m: MountSpec): PlannedMount {
  // Named by destination: the host leaves out the spec's entries the guest provides, so
  // the request's positions are not the spec's.
  const what = `mount at ${String(m.destination)}`;
  const type = m.type as GuestMountType;
  if (!GUEST_MOUNT_TYPES.includes(type)) {
    throw new MoatError("ENOTSUP", `${what}: the guest does not make "${m.type}" mounts`);
  }
  if (type === "bind" ? !VOLUME_SOURCE.test(m.source) : m.source !== "") {
    throw new MoatError("EINVAL", `${what}: source "${m.source}" is not a path on the volume share`);
  }
  const destination = checkDestination(m.destination, what);
  if (type === "mqueue" && destination !== "/dev/mqueue") {
    throw new MoatError("ENOTSUP", `${what}: mqueue is mounted only at /dev/mqueue`);
  }
  const options = canonicalOptions(type, m.options, what);
  return {
    destination,
    type,
    options,
    readonly: options.includes("ro"),
    recursive: m.options.includes("rbind"),
    copyUp: type === "tmpfs" && copyUp(m.options),
  };
}
