// The host side of a vm container's volumes: each bind mount's source is bind-mounted at
// <volumes>/<container id>/<n>, and <volumes> is the sandbox's writable 9p share.
// The guest can write to that share while this runs, so it could plant a symlink or swap
// a directory where the next bind is about to go and have it land elsewhere on the host.
// So no path under <volumes> is trusted: every step goes through an O_PATH descriptor of
// the directory made one step before (/proc/self/fd/<n>/name), each new entry is made
// with O_EXCL/mkdir (which never follow a symlink) and checked by fstat, and the mount
// targets the checked inode itself. A mount point in use cannot be renamed or removed,
// so once a bind is made its path stays put. The container's directory stays pinned until
// release(), which finds the binds where that directory really is.
import {
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import type { PlannedMount } from "../agent/mounts.js";
import type { MountSpec } from "../agent/protocol.js";
import { MoatError } from "../spec/errors.js";
import { MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT, mount } from "../sys/fs.js";
import { mountsUnder, unmountAll } from "../sys/mounts.js";

/** Linux's O_PATH on x86-64 (Node's fs.constants does not name it). */
const O_PATH = 0o10000000;

const fdPath = (fd: number, name?: string) => `/proc/self/fd/${fd}${name === undefined ? "" : `/${name}`}`;

/** Make a new directory or empty file; something already there was put there by the guest. */
function create(path: string, dir: boolean, what: string): void {
  try {
    if (dir) mkdirSync(path, { mode: 0o700 });
    else writeFileSync(path, "", { mode: 0o600, flag: "wx" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    throw new MoatError("EUNSAFE", `${what} already exists: the guest is tampering with its volumes`, {
      cause: e,
    });
  }
}

/** An O_PATH descriptor of what is at `path` now, which must be a directory or file as asked, never a symlink. */
function pin(path: string, dir: boolean, what: string): number {
  const fd = openSync(path, O_PATH | constants.O_NOFOLLOW);
  const st = fstatSync(fd);
  if (st.isSymbolicLink() || st.isDirectory() !== dir) {
    closeSync(fd);
    throw new MoatError(
      "EUNSAFE",
      `${what} was replaced while moat set it up: the guest is tampering with its volumes`,
    );
  }
  return fd;
}

export class ContainerVolumes {
  private constructor(
    /** O_PATH descriptor of <volumes>/<container id>. */
    private readonly dirFd: number,
    private readonly label: string,
  ) {}

  /**
   * Bind each planned bind mount's host source under the container's volume directory;
   * returns the mounts as the agent takes them, and the volumes to release later (none
   * when the container has no bind mounts).
   */
  static share(
    volumesFd: number,
    containerId: string,
    planned: readonly PlannedMount[],
  ): { volumes?: ContainerVolumes; mounts: MountSpec[] } {
    const mounts: MountSpec[] = [];
    let volumes: ContainerVolumes | undefined;
    try {
      for (const [i, p] of planned.entries()) {
        if (p.type !== "bind") {
          mounts.push({ destination: p.destination, type: p.type, source: "", options: p.options });
          continue;
        }
        const src = p.hostSource!;
        const isDir = sourceKind(src, p.destination);
        if (!volumes) {
          const label = `the volume directory of container ${containerId}`;
          create(fdPath(volumesFd, containerId), true, label);
          volumes = new ContainerVolumes(pin(fdPath(volumesFd, containerId), true, label), label);
        }
        volumes.bind(src, String(i), isDir, p);
        mounts.push({
          destination: p.destination,
          type: "bind",
          source: `${containerId}/${i}`,
          options: [...(p.recursive ? ["rbind"] : []), ...p.options],
        });
      }
    } catch (e) {
      volumes?.release();
      throw e;
    }
    return { ...(volumes ? { volumes } : {}), mounts };
  }

  private bind(src: string, name: string, isDir: boolean, p: PlannedMount): void {
    const at = fdPath(this.dirFd, name);
    const what = `the mount point for ${p.destination}`;
    create(at, isDir, what);
    const fd = pin(at, isDir, what);
    try {
      mount(src, fdPath(fd), null, MS_BIND | (p.recursive ? MS_REC : 0), null);
    } catch (e) {
      throw new MoatError(
        "EIO",
        `cannot share ${src} with the VM: ${(e as Error).message}; moat's vm isolation runs as root`,
        { cause: e },
      );
    } finally {
      closeSync(fd);
    }
    if (!p.readonly) return;
    // Read-only on the host too, so QEMU itself cannot write there. The path now ends in
    // a mount point, which nobody can rename or remove; MS_REC does not carry a read-only
    // remount down to submounts, so each gets its own.
    const real = readlinkSync(fdPath(this.dirFd));
    for (const m of [at, ...mountsUnder(`${real}/${name}`).filter((x) => x !== `${real}/${name}`)]) {
      mount("none", m, null, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, null);
    }
  }

  /**
   * Detach every bind, wherever the guest may have moved the directory, then remove the
   * empty mount points one by one: never recursively, so a bind that would not let go
   * cannot take the host's data with it.
   */
  release(): void {
    const real = readlinkSync(fdPath(this.dirFd));
    if (real.endsWith(" (deleted)")) {
      // Removed behind moat's back: it was empty, so nothing of it is mounted.
      closeSync(this.dirFd);
      return;
    }
    unmountAll(mountsUnder(real));
    const left = mountsUnder(real);
    if (left.length > 0) {
      throw new MoatError(
        "EBUSY",
        `cannot unmount ${left.join(", ")}: unmount it by hand, then remove ${real}`,
      );
    }
    try {
      for (const e of readdirSync(fdPath(this.dirFd))) {
        const p = fdPath(this.dirFd, e);
        try {
          rmdirSync(p);
        } catch {
          unlinkSync(p);
        }
      }
      rmdirSync(real);
    } catch (e) {
      throw new MoatError("EBUSY", `cannot remove ${this.label} (${real}): ${(e as Error).message}`, {
        cause: e,
      });
    } finally {
      closeSync(this.dirFd);
    }
  }
}

/** true for a directory, false for a file; anything else cannot cross 9p. */
function sourceKind(src: string, destination: string): boolean {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(src);
  } catch (e) {
    throw new MoatError(
      "ENOENT",
      `bind mount source ${src} (for ${destination}) does not exist: create it first`,
      {
        cause: e,
      },
    );
  }
  if (!st.isDirectory() && !st.isFile()) {
    throw new MoatError(
      "ENOTSUP",
      `bind mount source ${src} (for ${destination}) is neither a file nor a directory: the vm isolation shares only those with the guest`,
    );
  }
  return st.isDirectory();
}

/** O_PATH descriptor of the sandbox's volume share, made by the host before the guest boots. */
export function pinVolumeRoot(path: string): number {
  return pin(path, true, "the sandbox's volume directory");
}
