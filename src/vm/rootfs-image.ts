// A container's rootfs as a read-only erofs image, for the guest to read from a virtio-blk
// disk instead of through the 9p share: the guest kernel then caches and reads ahead on
// its own, with no round trip to QEMU's 9p server per file operation. Only a container
// known when the VM starts can have one (microvm has no hotplug); later ones use 9p.
import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { MoatError } from "../spec/errors.js";

export const MKFS_EROFS = "mkfs.erofs";

/**
 * Write `rootfs` (a directory, usually the bundle's overlay mount) into the erofs image
 * `out`. mkfs.erofs records symbolic links as links and never follows them, so a link
 * in the image cannot pull a host file in; owners, modes and mtimes are kept.
 */
export async function buildRootfsImage(rootfs: string, out: string): Promise<void> {
  try {
    await runQuiet(MKFS_EROFS, ["--quiet", "--preserve-mtime", out, rootfs]);
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
      `cannot write ${rootfs} as an erofs image: ${(err.stderr || err.message).trim()}`,
      { cause: e },
    );
  }
}

/**
 * Run a tool to its end; a failure carries its stderr. In a session of its own (setsid):
 * a ^C at the terminal is moat's to handle, and must not turn into a failed image.
 */
function runQuiet(binary: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      stderr = (stderr + d).slice(-8192);
    });
    child.once("error", reject);
    child.once("close", (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          Object.assign(
            new Error(`${binary} ${signal ? `was killed by ${signal}` : `exited with ${code}`}`),
            {
              stderr,
            },
          ),
        );
    });
  });
}
