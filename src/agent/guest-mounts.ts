// The guest side of the spec's mounts: applied in the spec's order inside a container's
// rootfs after the guest laid it out, before its first process starts.
// The destination is untrusted (the image may plant symlinks or ".."), so it is resolved
// within the rootfs, the mount point is created as a real directory or empty file, and
// then pinned with an O_PATH descriptor whose path is checked again: the mount goes to
// /proc/<agent>/fd/<n>, the very inode that was checked, whatever the path says by then.
// A bind is prepared off to the side (bind, then remount with its flags: "ro" holds in
// the guest, and the host's side of the share is read-only too) and moved into place, so
// nothing ever mounts at a path the container could still redirect.
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { isMoatError } from "../spec/errors.js";
import { Code, TtrpcError } from "../ttrpc/messages.js";
import { checkMountSpec, type PlannedMount } from "./mounts.js";
import type { MountSpec } from "./protocol.js";
import { resolveInRoot } from "./rootpath.js";

/** Where the guest mounts the host's writable volume share. */
export const VOLUME_MOUNT = "/run/moat/volumes";

/** Linux's O_PATH on x86-64 (Node's fs.constants does not name it). */
const O_PATH = 0o10000000;

export interface MountTarget {
  readonly rootfs: string;
  /** The container's private guest directory (a tmpfs); bind mounts are staged in it. */
  readonly dir: string;
  /** The container's cgroup v2 directory, bound for a "cgroup" mount. */
  readonly cgroup: string;
}

/** What must wait for the container's own namespaces: mqueue belongs to its IPC namespace. */
export interface Deferred {
  mqueue?: { target: string; options: string[] };
}

type Run = (args: string[]) => Promise<void>;

export async function applyMounts(c: MountTarget, mounts: readonly MountSpec[], run: Run): Promise<Deferred> {
  const deferred: Deferred = {};
  const stage = join(c.dir, "stage");
  for (const [i, m] of mounts.entries()) {
    try {
      await applyOne(c, m, i, stage, deferred, run);
    } catch (e) {
      // Name the mount in every failure, busybox's own messages included.
      const what = `mount at ${m.destination}`;
      if (e instanceof TtrpcError && !e.message.startsWith("mount at "))
        throw new TtrpcError(e.code, `${what}: ${e.message}`);
      if (!(e instanceof TtrpcError)) throw new TtrpcError(Code.INTERNAL, `${what}: ${(e as Error).message}`);
      throw e;
    }
  }
  return deferred;
}

async function applyOne(
  c: MountTarget,
  m: MountSpec,
  i: number,
  stage: string,
  deferred: Deferred,
  run: Run,
): Promise<void> {
  let p: PlannedMount;
  try {
    p = checkMountSpec(m);
  } catch (e) {
    if (isMoatError(e))
      throw new TtrpcError(e.code === "ENOTSUP" ? Code.UNIMPLEMENTED : Code.INVALID_ARGUMENT, e.message);
    throw e;
  }
  const what = `mount at ${p.destination}`;
  const source =
    p.type === "bind" ? join(VOLUME_MOUNT, m.source) : p.type === "cgroup" ? c.cgroup : undefined;
  let file = false;
  if (source) {
    try {
      file = !statSync(source).isDirectory();
    } catch (e) {
      throw new TtrpcError(
        Code.NOT_FOUND,
        `${what}: its source is missing in the guest: ${(e as Error).message}`,
      );
    }
  }
  const target = makeMountPoint(c.rootfs, p.destination, file, what);
  if (p.type === "mqueue") {
    deferred.mqueue = { target, options: p.options };
    return;
  }
  if (source) {
    mkdirSync(stage, { recursive: true, mode: 0o700 });
    const staged = join(stage, String(i));
    if (file) writeFileSync(staged, "", { mode: 0o600 });
    else mkdirSync(staged, { mode: 0o700 });
    await run(["mount", p.recursive ? "--rbind" : "--bind", source, staged]);
    // A plain bind takes none of the options: flags (ro first) come with a remount.
    if (p.options.length > 0) await run(["mount", "-o", ["remount", "bind", ...p.options].join(","), staged]);
    await pinned(target, file, what, (at) => run(["mount", "--move", staged, at]));
  } else if (p.copyUp) {
    // Filled off to the side from what the image has there, then moved over it.
    mkdirSync(stage, { recursive: true, mode: 0o700 });
    const staged = join(stage, String(i));
    mkdirSync(staged, { mode: 0o700 });
    await run(["mount", "-t", "tmpfs", "-o", mountOptions(p), "moat-tmpfs", staged]);
    await pinned(target, file, what, async (at) => {
      await run(["cp", "-a", `${at}/.`, `${staged}/`]);
      await run(["mount", "--move", staged, at]);
    });
  } else {
    await pinned(target, file, what, (at) =>
      run(["mount", "-t", p.type, "-o", mountOptions(p), `moat-${p.type}`, at]),
    );
  }
}

function mountOptions(p: PlannedMount): string {
  return p.options.length > 0 ? p.options.join(",") : "defaults";
}

/**
 * The destination resolved inside the rootfs, created if missing (a directory, or an empty
 * file for a file bind, with any missing parents), and of the kind the mount needs.
 */
function makeMountPoint(rootfs: string, destination: string, file: boolean, what: string): string {
  let target: string;
  try {
    target = resolveInRoot(rootfs, destination);
  } catch (e) {
    throw new TtrpcError(Code.INVALID_ARGUMENT, `${what}: ${(e as Error).message}`);
  }
  if (target === rootfs)
    throw new TtrpcError(Code.INVALID_ARGUMENT, `${what}: it resolves to the container's root`);
  let st: ReturnType<typeof lstatSync> | undefined;
  try {
    st = lstatSync(target);
  } catch {
    // missing: made below
  }
  try {
    if (!st) {
      mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
      if (file) writeFileSync(target, "", { flag: "wx", mode: 0o644 });
      else mkdirSync(target, { mode: 0o755 });
    }
  } catch (e) {
    throw new TtrpcError(
      Code.INVALID_ARGUMENT,
      `${what}: cannot create the mount point: ${(e as Error).message}`,
    );
  }
  return target;
}

/** Run `fn` on a /proc path to the inode at `target`, after checking it is still there and of the right kind. */
async function pinned(
  target: string,
  file: boolean,
  what: string,
  fn: (at: string) => Promise<void>,
): Promise<void> {
  const fd = openSync(target, O_PATH | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (readlinkSync(`/proc/self/fd/${fd}`) !== target || st.isSymbolicLink()) {
      throw new TtrpcError(
        Code.INVALID_ARGUMENT,
        `${what}: the mount point changed while it was being mounted`,
      );
    }
    if (st.isDirectory() === file) {
      throw new TtrpcError(
        Code.INVALID_ARGUMENT,
        `${what}: the container has a ${st.isDirectory() ? "directory" : "file"} there, but the source is a ${
          file ? "file" : "directory"
        }`,
      );
    }
    await fn(`/proc/${process.pid}/fd/${fd}`);
  } finally {
    closeSync(fd);
  }
}
