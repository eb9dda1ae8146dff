// The rootfs containerd hands a task: mounts from its snapshotter (usually one overlay, or
// a bind of a directory) that the shim makes at <bundle>/rootfs, as runc's shim does, and
// takes down again when the task is deleted or its shim cleaned up.
import * as fs from "node:fs";
import * as path from "node:path";
import { MoatError } from "../spec/errors.js";
import {
  MNT_DETACH,
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  MS_REC,
  MS_REMOUNT,
  mount,
  umount,
} from "../sys/fs.js";
import type { Mount } from "./protocol.js";

const FLAGS: Record<string, number> = {
  ro: MS_RDONLY,
  nosuid: MS_NOSUID,
  nodev: MS_NODEV,
  noexec: MS_NOEXEC,
  bind: MS_BIND,
  rbind: MS_BIND | MS_REC,
};
const IGNORED = new Set(["rw", "suid", "dev", "exec", "defaults"]);

/** fstab-style options -> mount flags and the data string the file system gets. */
export function parseOptions(options: string[]): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    const f = FLAGS[o];
    if (f !== undefined) flags |= f;
    else if (!IGNORED.has(o)) data.push(o);
  }
  return { flags, data: data.join(",") };
}

/** Mount containerd's rootfs mounts at `<bundle>/rootfs`; returns the path, or null if none. */
export function mountRootfs(bundle: string, mounts: Mount[]): string | null {
  if (mounts.length === 0) return null;
  const target = path.join(bundle, "rootfs");
  fs.mkdirSync(target, { recursive: true, mode: 0o711 });
  let done = 0;
  try {
    for (const m of mounts) {
      const { flags, data } = parseOptions(m.options);
      const type = m.type === "bind" || m.type === "rbind" ? null : m.type;
      if (type !== null && !/^[a-z0-9_.-]+$/.test(type)) {
        throw new MoatError("EINVAL", `rootfs mount type "${m.type}" is not a file system type`);
      }
      const bindFlags = type === null ? flags | MS_BIND | (m.type === "rbind" ? MS_REC : 0) : flags;
      mount(m.source, target, type, type === null ? bindFlags & ~MS_RDONLY : flags, data || null);
      done++;
      // A bind mount takes read-only only on a remount.
      if (type === null && flags & MS_RDONLY)
        mount("none", target, null, MS_BIND | MS_REMOUNT | MS_RDONLY, null);
    }
  } catch (e) {
    for (; done > 0; done--) umount(target, MNT_DETACH);
    throw new MoatError(
      "EIO",
      `cannot mount the task's rootfs at ${target}: ${(e as Error).message}; moat's shim runs as root, as containerd does`,
      { cause: e },
    );
  }
  return target;
}

/** Take down every mount at `target` (stacked mounts included). Missing targets are fine. */
export function unmountRootfs(target: string): void {
  for (let i = 0; i < 16; i++) {
    try {
      umount(target, MNT_DETACH);
    } catch {
      return; // EINVAL: not a mount point any more; ENOENT: gone
    }
  }
}
