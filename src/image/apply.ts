// Turning unpacked layer directories into a container rootfs. The fast way is an overlay
// mount (overlayMountOptions); where overlayfs cannot be mounted, applyLayers copies the
// layers into one directory with the same meaning overlayfs gives them, so both ways show
// the container the same tree.
import * as fs from "node:fs";
import { type BigIntStats, constants } from "node:fs";
import * as path from "node:path";
import { MoatError } from "../spec/errors.js";
import {
  lgetxattr,
  llistxattr,
  lremovexattr,
  lsetxattr,
  MNT_DETACH,
  mknod,
  mount,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
  umount,
} from "../sys/fs.js";
import { OVERLAY_OPAQUE_XATTR } from "./unpack-path.js";

const OVERLAY_XATTR_PREFIX = "trusted.overlay.";

/**
 * Apply layer directories (bottom first) onto `rootfs` with overlayfs semantics: a 0/0
 * character device deletes what is below, an opaque directory hides what is below, a
 * directory replaces a non-directory (a symlink included: it is never followed), anything
 * else replaces what was there. Owners, modes, times, xattrs (except overlayfs' own),
 * devices, fifos and symlinks are copied; hardlinks within a layer stay hardlinks.
 */
export async function applyLayers(layerDirs: string[], rootfs: string): Promise<void> {
  fs.mkdirSync(rootfs, { recursive: true });
  for (const layer of layerDirs) {
    const st = fs.lstatSync(layer, { bigint: true });
    if (!st.isDirectory()) {
      throw new MoatError(
        "ENOENT",
        `layer directory ${layer} is missing or not a directory: unpack the image again`,
      );
    }
    // Hardlinks are found by source inode; inode numbers only mean something within one layer.
    const links = new Map<bigint, string>();
    await applyDir(layer, rootfs, links);
    copyMeta(layer, rootfs, st, "dir");
  }
}

// The file calls are synchronous (a threadpool round trip per call made copying two to three
// times slower); the walk yields to the event loop once per directory instead.
async function applyDir(src: string, dst: string, links: Map<bigint, string>): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  for (const name of fs.readdirSync(src)) {
    const s = `${src}/${name}`;
    const d = `${dst}/${name}`;
    const st = fs.lstatSync(s, { bigint: true });
    const cur = lstatOrNull(d);

    if (st.isCharacterDevice() && st.rdev === 0n) {
      if (cur) remove(d, cur);
      continue;
    }
    if (st.isDirectory()) {
      if (cur?.isDirectory()) {
        if (lgetxattr(s, OVERLAY_OPAQUE_XATTR)?.toString() === "y") emptyDir(d);
      } else {
        if (cur) remove(d, cur);
        fs.mkdirSync(d, { mode: 0o700 });
      }
      await applyDir(s, d, links);
      copyMeta(s, d, st, "dir");
      continue;
    }

    if (cur) remove(d, cur);
    const first = st.nlink > 1n ? links.get(st.ino) : undefined;
    if (first !== undefined) {
      fs.linkSync(first, d);
      continue;
    }
    if (st.isFile()) {
      // COPYFILE_EXCL opens the destination with O_EXCL, which never follows a symlink.
      fs.copyFileSync(s, d, constants.COPYFILE_EXCL);
      copyMeta(s, d, st, "other");
    } else if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(s), d);
      copyMeta(s, d, st, "symlink");
    } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      const kind = st.isFIFO() ? S_IFIFO : st.isBlockDevice() ? S_IFBLK : S_IFCHR;
      mknod(d, kind, 0o600, ...devNumbers(st.rdev));
      copyMeta(s, d, st, "other");
    } else {
      continue; // sockets: no tar entry makes one, and they mean nothing without their process
    }
    if (st.nlink > 1n) links.set(st.ino, d);
  }
}

/** glibc's major()/minor() for Linux's 64-bit dev_t. */
function devNumbers(rdev: bigint): [number, number] {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return [Number(major), Number(minor)];
}

// Owner first, then mode (chown clears setuid/setgid), then xattrs (chown also clears
// security.capability), then times (everything before changes them).
function copyMeta(src: string, dst: string, st: BigIntStats, kind: "dir" | "symlink" | "other"): void {
  fs.lchownSync(dst, Number(st.uid), Number(st.gid));
  if (kind !== "symlink") fs.chmodSync(dst, Number(st.mode) & 0o7777);
  const wanted = llistxattr(src).filter((n) => !n.startsWith(OVERLAY_XATTR_PREFIX));
  if (kind === "dir") {
    // A merged directory shows only the top layer's xattrs, as overlayfs shows it. Only the
    // kinds an image can carry are removed: a label the host's LSM put there stays.
    for (const n of llistxattr(dst)) if (!wanted.includes(n) && imageXattr(n)) lremovexattr(dst, n);
  }
  for (const n of wanted) {
    const value = lgetxattr(src, n);
    if (value !== undefined) lsetxattr(dst, n, value);
  }
  fs.lutimesSync(dst, Number(st.atimeNs) / 1e9, Number(st.mtimeNs) / 1e9);
}

function imageXattr(name: string): boolean {
  return name.startsWith("user.") || name === "security.capability" || name.startsWith("system.posix_acl_");
}

function emptyDir(dir: string): void {
  for (const name of fs.readdirSync(dir)) fs.rmSync(`${dir}/${name}`, { recursive: true, force: true });
}

function remove(p: string, st: BigIntStats): void {
  // fs.rm unlinks symlinks it meets instead of following them.
  if (st.isDirectory()) fs.rmSync(p, { recursive: true, force: true });
  else fs.unlinkSync(p);
}

function lstatOrNull(p: string): BigIntStats | null {
  return fs.lstatSync(p, { bigint: true, throwIfNoEntry: false }) ?? null;
}

// mount(2) copies at most one page of option text.
const MAX_MOUNT_DATA = 4095;

/** The overlayfs mount options for these layers (bottom first), top layer first as overlayfs wants. */
export function overlayMountOptions(layerDirs: string[], upper: string, work: string): string {
  if (layerDirs.length === 0) {
    throw new MoatError(
      "EINVAL",
      "an overlay rootfs needs at least one layer and the image has none: use copy mode",
    );
  }
  for (const p of [...layerDirs, upper, work]) {
    if (/[,:\\]/.test(p)) {
      throw new MoatError(
        "EINVAL",
        `path ${p} contains ',', ':' or '\\', which overlayfs mount options cannot carry: move the image store and bundles to a plain path`,
      );
    }
  }
  const options = `lowerdir=${[...layerDirs].reverse().join(":")},upperdir=${upper},workdir=${work}`;
  if (options.length > MAX_MOUNT_DATA) {
    throw new MoatError(
      "ENOTSUP",
      `the overlay mount options for ${layerDirs.length} layers are ${options.length} bytes, more than the kernel takes (${MAX_MOUNT_DATA}): use copy mode for this image or a shorter image store path`,
    );
  }
  return options;
}

const probes = new Map<string, Promise<boolean>>();

/**
 * Whether an overlay mount of layer directories works here (kernel support, privileges, and
 * a filesystem under `scratchDir` that overlayfs accepts). Probed once per scratch directory.
 */
export function canUseOverlay(scratchDir: string): Promise<boolean> {
  const key = path.resolve(scratchDir);
  let probe = probes.get(key);
  if (!probe) {
    probe = probeOverlay(key);
    probes.set(key, probe);
  }
  return probe;
}

async function probeOverlay(scratchDir: string): Promise<boolean> {
  let dir: string | undefined;
  try {
    await fs.promises.mkdir(scratchDir, { recursive: true });
    dir = await fs.promises.mkdtemp(path.join(scratchDir, "overlay-probe-"));
    const [lower, top, upper, work, merged] = ["lower", "top", "upper", "work", "merged"].map((n) =>
      path.join(dir!, n),
    );
    for (const d of [lower!, top!, upper!, work!, merged!]) await fs.promises.mkdir(d);
    await fs.promises.writeFile(path.join(lower!, "kept"), "");
    await fs.promises.writeFile(path.join(lower!, "gone"), "");
    // Exercise exactly what layer directories rely on: a whiteout hiding a lower file.
    mknod(path.join(top!, "gone"), S_IFCHR, 0, 0, 0);
    mount("overlay", merged!, "overlay", 0, overlayMountOptions([lower!, top!], upper!, work!));
    let names: string[];
    try {
      names = await fs.promises.readdir(merged!);
    } finally {
      umount(merged!, MNT_DETACH);
    }
    return names.includes("kept") && !names.includes("gone");
  } catch {
    return false;
  } finally {
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
