// The runtime spec's mounts, as the userkernel does them. Bind mounts (volumes: docker's
// -v, and what Kubernetes passes for /etc/hosts, /etc/resolv.conf, ConfigMaps, Secrets,
// emptyDir) are served by the gofer, each confined to its source; tmpfs mounts are the
// kernel's own memory. The default spec's proc, dev, devpts, mqueue, sysfs and cgroup
// entries are what the kernel provides by itself (or, for /sys and /dev/pts, what it has no
// file system for), so they are accepted as they are. Any other type is refused with an
// error that names it: a mount silently left out would hide a volume the program needs.
import * as path from "node:path";
import { MoatError } from "../../spec/errors.js";
import type { Mount } from "../../spec/runtime.js";
import type { GoferClient } from "../gofer/client.js";
import type { RootSpec } from "../gofer/protocol.js";
import type { Vfs } from "../vfs/index.js";

export type MountStep =
  | { kind: "bind"; destination: string; source: string; readOnly: boolean }
  | { kind: "tmpfs"; destination: string; readOnly: boolean; mode?: number; size?: number }
  /** Provided by the kernel itself (proc, the /dev tmpfs) or with no file system here (sysfs, devpts...). */
  | { kind: "builtin"; destination: string; type: string };

/** Types the default spec lists that need nothing beyond what the kernel already has. */
const BUILTIN_TYPES = new Set(["devpts", "mqueue", "sysfs", "cgroup", "cgroup2"]);

function sizeOf(v: string, where: string): number {
  const m = /^(\d+)([kmg%]?)$/i.exec(v);
  if (!m || m[2] === "%")
    throw new MoatError(
      "EINVAL",
      `${where}: tmpfs size=${v} is not a size; give bytes or a number with k, m or g`,
    );
  const scale = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g"];
  return Number(m[1]) * scale;
}

/**
 * Check the config's mounts and put them in the order they apply (the config's). Relative
 * bind sources are relative to the bundle, as the runtime spec says. Throws MoatError for a
 * mount the userkernel cannot do.
 */
export function planMounts(mounts: readonly Mount[] | undefined, bundle: string): MountStep[] {
  const steps: MountStep[] = [];
  for (const [i, m] of (mounts ?? []).entries()) {
    const where = `mounts[${i}] (${m.type ?? "no type"} on ${m.destination})`;
    if (typeof m.destination !== "string" || !m.destination.startsWith("/"))
      throw new MoatError("EINVAL", `${where}: the destination must be an absolute path in the container`);
    const dest = path.posix.normalize(m.destination);
    const opts = m.options ?? [];
    let readOnly = false;
    for (const o of opts) {
      if (o === "ro") readOnly = true;
      else if (o === "rw") readOnly = false;
    }
    const type = m.type ?? "";
    if (
      type === "bind" ||
      ((type === "" || type === "none") && opts.some((o) => o === "bind" || o === "rbind"))
    ) {
      if (!m.source)
        throw new MoatError("EINVAL", `${where}: a bind mount needs a source (a host directory or file)`);
      steps.push({ kind: "bind", destination: dest, source: path.resolve(bundle, m.source), readOnly });
    } else if (type === "tmpfs" && dest === "/dev") {
      // The kernel's /dev (null, zero, random, ...) is the tmpfs runc would mount there.
      steps.push({ kind: "builtin", destination: dest, type });
    } else if (type === "tmpfs") {
      const step: MountStep = { kind: "tmpfs", destination: dest, readOnly };
      for (const o of opts) {
        if (o.startsWith("size=")) step.size = sizeOf(o.slice(5), where);
        else if (o.startsWith("mode=")) {
          const mode = Number.parseInt(o.slice(5), 8);
          if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)
            throw new MoatError("EINVAL", `${where}: tmpfs ${o} is not an octal mode`);
          step.mode = mode;
        }
      }
      steps.push(step);
    } else if (type === "proc" && dest === "/proc") {
      steps.push({ kind: "builtin", destination: dest, type });
    } else if (BUILTIN_TYPES.has(type)) {
      steps.push({ kind: "builtin", destination: dest, type });
    } else {
      throw new MoatError(
        "ENOTSUP",
        `${where}: the userkernel cannot mount ${type ? `a ${type} file system` : "a mount without a type"}; it does bind mounts of host directories and files, tmpfs, and the default proc, dev, devpts, mqueue, sysfs and cgroup entries. Remove this mount from config.json or use --isolation vm`,
      );
    }
  }
  return steps;
}

/** The gofer's roots after the rootfs: each bind mount's source, in config order. */
export function volumeRoots(steps: readonly MountStep[]): RootSpec[] {
  return steps.flatMap((s) => (s.kind === "bind" ? [{ path: s.source, writable: !s.readOnly }] : []));
}

/** Apply the steps to a fresh VFS, in order, before any process runs. */
export async function applyMounts(vfs: Vfs, gofer: GoferClient, steps: readonly MountStep[]): Promise<void> {
  const admin = vfs.adminCtx();
  let root = 0;
  for (const s of steps) {
    try {
      if (s.kind === "bind") {
        root++;
        await vfs.mountVolume(admin, s.destination, gofer, root, s.source, s.readOnly);
      } else if (s.kind === "tmpfs") {
        await vfs.mountTmpfs(admin, s.destination, {
          ...(s.mode !== undefined ? { mode: s.mode } : {}),
          ...(s.size !== undefined ? { size: s.size } : {}),
          readOnly: s.readOnly,
        });
      }
    } catch (e) {
      if (e instanceof MoatError) throw e;
      const what = s.kind === "bind" ? `${s.source} at ${s.destination}` : `a tmpfs at ${s.destination}`;
      throw new MoatError(
        "EIO",
        `cannot mount ${what} in the container (${(e as Error).message}); check the mount's destination in config.json`,
        { cause: e },
      );
    }
  }
}
