// The gofer process: `node main.js <parent-pid> <roots>` with the kernel's socket as fd 3.
// <roots> is JSON: the rootfs first (read-only), then each bind mount's source as the
// container's config names it ({path, writable}), so every host path the gofer touches
// comes from the config. It must never outlive the kernel: the parent-death signal kills it
// if the kernel dies, and it exits when the socket reaches EOF.
import { AT_FDCWD, fstat, O_CLOEXEC, O_PATH, openat } from "../../sys/file.js";
import { getpid, PR_SET_PDEATHSIG, prctl, setpgid } from "../../sys/process.js";
import type { RootSpec } from "./protocol.js";
import { type Root, serve } from "./server.js";

const SIGKILL = 9;
const PR_SET_NO_NEW_PRIVS = 38;
const SOCKET_FD = 3;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

function parseRoots(text: string): RootSpec[] {
  const v = JSON.parse(text) as unknown;
  if (!Array.isArray(v) || v.length === 0) throw new Error("no roots");
  return v.map((r: { path?: unknown; writable?: unknown }) => {
    if (typeof r.path !== "string" || typeof r.writable !== "boolean") throw new Error("bad root");
    return { path: r.path, writable: r.writable };
  });
}

function main(): void {
  const [parent, rootsText] = process.argv.slice(2);
  if (!parent || !rootsText) {
    process.stderr.write("usage: gofer <parent-pid> <roots-json> (with the kernel socket as fd 3)\n");
    process.exit(2);
  }
  // A process group of its own, first: a terminal's ^C goes to moat's group, and moat
  // decides what the container gets (child_process can make a session, not just a group; the
  // session stays moat's, where the OCI monitor looks for what it started). A ^C in the few
  // milliseconds before this line reaches moat too, which ends the container then anyway.
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Nothing the gofer runs may gain privileges (setuid binaries, file capabilities).
  prctl(PR_SET_NO_NEW_PRIVS, 1);
  // The kernel may have died before the line above: then nothing would ever signal us.
  if (process.ppid !== Number(parent)) process.exit(1);
  process.title = `moat-gofer ${getpid()}`;
  const roots: Root[] = [];
  try {
    for (const r of parseRoots(rootsText)) {
      let fd: number;
      try {
        fd = openat(AT_FDCWD, r.path, O_PATH | O_CLOEXEC);
      } catch (e) {
        throw new Error(`cannot open ${r.path}: ${(e as Error).message}`);
      }
      const type = fstat(fd).mode & S_IFMT;
      // A volume is a directory or a regular file; a device or socket source is not served.
      if (type !== S_IFDIR && type !== S_IFREG)
        throw new Error(`${r.path} is neither a directory nor a file`);
      if (roots.length === 0 && type !== S_IFDIR) throw new Error(`the rootfs ${r.path} is not a directory`);
      // The rootfs stays read-only whatever is asked: the overlay keeps the container's writes.
      roots.push({ fd, writable: roots.length > 0 && r.writable, dir: type === S_IFDIR });
    }
  } catch (e) {
    process.stderr.write(`moat gofer: ${(e as Error).message}\n`);
    process.exit(1);
  }
  process.chdir("/");
  // Files a volume gets carry the mode the container asked for (its own umask applied already).
  process.umask(0);
  serve(SOCKET_FD, roots);
  process.exit(0);
}

main();
