// A container's rootfs as a read-only erofs image, for the guest to read from a virtio-blk
// disk instead of through the 9p share: the guest kernel then caches and reads ahead on
// its own, with no round trip to QEMU's 9p server per file operation. Only a container
// known when the VM starts can have one (microvm has no hotplug); later ones use 9p.
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";
import { MoatError } from "../spec/errors.js";

const execFileP = promisify(execFile);

export const MKFS_EROFS = "mkfs.erofs";

/**
 * Write `rootfs` (a directory, usually the bundle's overlay mount) into the erofs image
 * `out`. mkfs.erofs records symbolic links as links and never follows them, so a link
 * in the image cannot pull a host file in; owners, modes and mtimes are kept.
 */
export async function buildRootfsImage(rootfs: string, out: string): Promise<void> {
  try {
    await execFileP(MKFS_EROFS, ["--quiet", "--preserve-mtime", out, rootfs], { maxBuffer: 1 << 20 });
  } catch (e) {
    await rm(out, { force: true });
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") {
      throw new MoatError("ENOENT", `${MKFS_EROFS} is not installed: install the erofs-utils package`, {
        cause: e,
      });
    }
    throw new MoatError(
      "EIO",
      `cannot write ${rootfs} as an erofs image: ${(err.stderr ?? err.message).trim()}`,
      { cause: e },
    );
  }
}
