// A container's rootfs and /dev, laid out in the guest. Each container's rootfs is an
// overlay whose lower layer is its directory on the read-only 9p share (or a read-only
// erofs disk) and whose upper layer is a tmpfs, so its writes stay in guest memory and
// never reach the host. Kept apart from the processes that run in it: this part only
// mounts, and it is the one that must never follow a symlink the image planted.
// The spec's mounts (volumes, tmpfs, sysfs, ...) are applied after the layout, in the
// spec's order (guest-mounts.ts); host files and directories arrive on a second, writable
// 9p share, so a container's writes to a read-write volume do reach the host.
import { mkdirSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { Code, TtrpcError } from "../ttrpc/messages.js";
import { run } from "./busybox.js";
import { VOLUME_MOUNT } from "./guest-mounts.js";

export const SHARE_MOUNT = "/run/moat/share";
export const CONTAINERS = "/run/moat/c";

/**
 * What every container's /dev holds besides its device nodes: the mount points for shm
 * and pts, and the usual links. Made once per guest (makeDevSkeleton), copied per container.
 */
const DEV_SKELETON = "/run/moat/dev";
/** Copied from the guest's devtmpfs: cp -a makes each as a node of the same device. */
const DEV_NODES = ["null", "zero", "full", "random", "urandom", "tty"];

// Lay out one container. Mount targets must not be symlinks the image planted: the
// guest kernel would follow them out of the rootfs. Under TCG each process the guest
// starts costs tens of ms: few commands, one shell.
const SETUP_SCRIPT = `set -e
c=$1; lower=$2; disk=$3; r=$1/rootfs
mkdir -p "$c"
mount -t tmpfs -o mode=0700 moat-container "$c"
mkdir "$c/upper" "$c/work" "$r"
if [ -n "$disk" ]; then
  mkdir "$c/lower"
  mount -t erofs -o ro,nodev "$disk" "$c/lower"
  lower=$c/lower
fi
mount -t overlay -o "lowerdir=$lower,upperdir=$c/upper,workdir=$c/work" overlay "$r"
for d in proc dev; do
  if [ -L "$r/$d" ]; then echo "/$d in the image is a symbolic link" >&2; exit 1; fi
done
mkdir -p "$r/proc" "$r/dev"
# busybox unshare --mount-proc makes its target private first, which needs a mount point.
mount --bind "$r/proc" "$r/proc"
mount -t tmpfs -o nosuid,mode=0755 dev "$r/dev"
cp -a ${DEV_NODES.map((n) => `/dev/${n}`).join(" ")} ${DEV_SKELETON}/. "$r/dev/"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$r/dev/shm"
# The guest's one devpts instance, where moat-pty allocates terminals: a process must
# find its own /dev/pts/N for tty(1) and ttyname(3) to work.
mount --bind /dev/pts "$r/dev/pts"
`;

/**
 * Mount the sandbox's shares: the read-only one every container's rootfs lies on, and the
 * writable volume share when the host gave one. One shell for every step: under TCG each
 * process the guest starts costs tens of ms.
 */
export function mountShares(shareTag: string, volumeTag: string): Promise<void> {
  const steps = [
    "set -e",
    `mkdir -p ${SHARE_MOUNT} ${CONTAINERS}`,
    `mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=none "$1" ${SHARE_MOUNT}`,
  ];
  if (volumeTag !== "") {
    // Read-write: a volume's writes belong on the host. The host keeps read-only
    // volumes read-only on its side as well.
    steps.push(
      `mkdir -p ${VOLUME_MOUNT}`,
      `mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,nosuid,nodev "$2" ${VOLUME_MOUNT}`,
    );
  }
  return run(["sh", "-c", steps.join("\n"), "sh", shareTag, volumeTag]);
}

/** The skeleton of every container's /dev (DEV_SKELETON), made with no process at all. */
export function makeDevSkeleton(): void {
  mkdirSync(join(DEV_SKELETON, "shm"), { recursive: true, mode: 0o755 });
  mkdirSync(join(DEV_SKELETON, "pts"), { mode: 0o755 });
  const links: [string, string][] = [
    ["ptmx", "pts/ptmx"],
    ["fd", "/proc/self/fd"],
    ["stdin", "/proc/self/fd/0"],
    ["stdout", "/proc/self/fd/1"],
    ["stderr", "/proc/self/fd/2"],
  ];
  for (const [name, target] of links) symlinkSync(target, join(DEV_SKELETON, name));
}

/**
 * Lay out the container's directory `dir`: its tmpfs, the overlay at dir/rootfs over
 * `lower` (a directory on the share) or over the erofs `disk` when one is named, and its
 * /proc and /dev.
 */
export function layOutRootfs(dir: string, lower: string, disk: string): Promise<void> {
  return run(["sh", "-c", SETUP_SCRIPT, "sh", dir, lower, disk]);
}

/**
 * Only the root's own mount: a bind remount changes that mount's flag, so /proc, /dev, the
 * tmpfs and volume mounts (and the /etc files docker-like runs bind in), all separate
 * mounts below it, stay writable, as with docker's --read-only.
 */
export function makeRootfsReadonly(rootfs: string): Promise<void> {
  return run(["mount", "-o", "remount,bind,ro", rootfs]);
}

/** Detach the container's rootfs and its tmpfs, and remove its directory; each best effort. */
export async function unmountRootfs(dir: string, rootfs: string): Promise<void> {
  await run(["umount", "-l", rootfs]).catch(() => {});
  await run(["umount", "-l", dir]).catch(() => {});
  await run(["rmdir", dir]).catch(() => {});
}

/** /dev/vdX of the read-only disk whose virtio-blk serial is `serial`. */
export function diskBySerial(serial: string): string {
  if (!/^[A-Za-z0-9_.-]{1,20}$/.test(serial))
    throw new TtrpcError(Code.INVALID_ARGUMENT, `disk serial "${serial}" is invalid`);
  for (const dev of readdirSync("/sys/block")) {
    try {
      if (readFileSync(`/sys/block/${dev}/serial`, "utf8").trim() === serial) return `/dev/${dev}`;
    } catch {
      // not a virtio-blk disk
    }
  }
  throw new TtrpcError(Code.NOT_FOUND, `the guest has no disk with serial ${serial}`);
}
