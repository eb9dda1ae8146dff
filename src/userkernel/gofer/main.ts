// The gofer process: `node main.js <rootfs> <parent-pid>` with the kernel's socket as fd 3.
// It must never outlive the kernel: the parent-death signal kills it if the kernel dies,
// and it exits when the socket reaches EOF.
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH, openat } from "../../sys/file.js";
import { getpid, PR_SET_PDEATHSIG, prctl } from "../../sys/process.js";
import { serve } from "./server.js";

const SIGKILL = 9;
const PR_SET_NO_NEW_PRIVS = 38;
const SOCKET_FD = 3;

function main(): void {
  const [root, parent] = process.argv.slice(2);
  if (!root || !parent) {
    process.stderr.write("usage: gofer <rootfs> <parent-pid> (with the kernel socket as fd 3)\n");
    process.exit(2);
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Nothing the gofer runs may gain privileges (setuid binaries, file capabilities).
  prctl(PR_SET_NO_NEW_PRIVS, 1);
  // The kernel may have died before the line above: then nothing would ever signal us.
  if (process.ppid !== Number(parent)) process.exit(1);
  process.title = `moat-gofer ${getpid()}`;
  let rootFd: number;
  try {
    rootFd = openat(AT_FDCWD, root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  } catch (e) {
    process.stderr.write(`moat gofer: cannot open the rootfs ${root}: ${(e as Error).message}\n`);
    process.exit(1);
  }
  process.chdir("/");
  serve(SOCKET_FD, rootFd);
  process.exit(0);
}

main();
