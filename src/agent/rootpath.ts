// A path inside a container's rootfs, resolved the way the container itself would see
// it: symlinks (absolute ones too) and ".." never lead above the rootfs. The agent needs
// this because busybox nsenter opens the working directory before it chroots.
import { lstatSync, readlinkSync } from "node:fs";
import { join } from "node:path";

const MAX_LINKS = 40;

export function resolveInRoot(root: string, path: string): string {
  let pending = path.split("/").filter((p) => p !== "" && p !== ".");
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === "..") {
      done.pop();
      continue;
    }
    const host = join(root, ...done, part);
    let isLink = false;
    try {
      isLink = lstatSync(host).isSymbolicLink();
    } catch {
      // A missing component is left for the exec to report with the container's own error.
    }
    if (!isLink) {
      done.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new Error(`too many symbolic links in ${path}`);
    const target = readlinkSync(host);
    if (target.startsWith("/")) done.length = 0;
    pending = [...target.split("/").filter((p) => p !== "" && p !== "."), ...pending];
  }
  return join(root, ...done);
}
