// Resolve a path inside a root directory the way the container would see it: symlinks are
// followed, but "/" and ".." never climb above the root. Used to read files of an untrusted
// rootfs (e.g. /etc/passwd) from the host without being led outside it.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { MoatError } from "../spec/errors.js";

const MAX_LINKS = 40;

export async function resolveInRoot(root: string, p: string): Promise<string> {
  const pending = p.split("/").filter((c) => c.length > 0);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length) {
    const c = pending.shift()!;
    if (c === ".") continue;
    if (c === "..") {
      resolved.pop();
      continue;
    }
    const full = path.join(root, ...resolved, c);
    let st: import("node:fs").Stats | undefined;
    try {
      st = await fs.lstat(full);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink()) {
      if (++links > MAX_LINKS)
        throw new MoatError("ELOOP", `too many symlinks resolving ${p} inside ${root}`);
      const target = await fs.readlink(full);
      if (target.startsWith("/")) resolved.length = 0;
      pending.unshift(...target.split("/").filter((x) => x.length > 0));
      continue;
    }
    resolved.push(c);
  }
  return path.join(root, ...resolved);
}

/** Read a file of the rootfs, or undefined when it does not exist. */
export async function readInRoot(root: string, p: string): Promise<string | undefined> {
  try {
    return await fs.readFile(await resolveInRoot(root, p), "utf8");
  } catch (e) {
    // Missing, not a file, or a symlink loop: the container would not read it either.
    if (["ENOENT", "ENOTDIR", "EISDIR", "ELOOP"].includes((e as NodeJS.ErrnoException).code ?? ""))
      return undefined;
    throw e;
  }
}
