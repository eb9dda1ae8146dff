// The gofer's request loop. It runs in its own process, holds a descriptor of the rootfs
// and nothing else of the host, and answers "open" requests with read-only descriptors.
// Every open goes through openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): ".." and
// absolute symlinks are clamped at the rootfs, so no name the image contains reaches the
// host. Device nodes, FIFOs and sockets are only ever opened O_PATH (opening a device can
// have effects, and a FIFO would block the gofer); files and directories are re-opened for
// reading through the O_PATH descriptor itself, so the file checked is the file opened.
import {
  AT_FDCWD,
  close,
  fstat,
  O_ACCMODE,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  openat,
  openat2,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
} from "../../sys/file.js";
import { SysError } from "../../sys/libc.js";
import { recvWithFds, sendWithFds } from "../../sys/socket.js";
import { decode, encode, MAX_PACKET, type Reply, type Request, toWire } from "./protocol.js";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
/** The only flags a request may carry; anything else (a write, create, truncate) is refused. */
const ALLOWED_FLAGS = O_PATH | O_DIRECTORY | O_NOFOLLOW;
const PATH_MAX = 4096;

type Answer = { reply: Reply; fd?: number };

function refuse(errno: string): Answer {
  return { reply: { ok: false, errno } };
}

function errnoOf(e: unknown): string {
  if (e instanceof SysError) return e.code;
  return "EIO";
}

/** Serve one open request against `rootFd`. Exported for the gofer's own tests. */
export function answerOpen(rootFd: number, req: Request): Answer {
  if (req.op !== "open" || typeof req.path !== "string" || typeof req.flags !== "number")
    return refuse("EINVAL");
  if ((req.flags & O_ACCMODE) !== O_RDONLY || (req.flags & ~ALLOWED_FLAGS) !== 0) return refuse("EROFS");
  if (req.path.length === 0 || req.path.length >= PATH_MAX || req.path.includes("\0"))
    return refuse("EINVAL");
  const resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (req.follow ? 0 : RESOLVE_NO_SYMLINKS);
  const pathFlags =
    O_PATH | O_CLOEXEC | (req.follow ? req.flags & O_NOFOLLOW : O_NOFOLLOW) | (req.flags & O_DIRECTORY);
  let pathFd: number;
  try {
    pathFd = openat2(rootFd, req.path, pathFlags, resolve);
  } catch (e) {
    return refuse(errnoOf(e));
  }
  try {
    const st = fstat(pathFd);
    if ((req.flags & O_PATH) !== 0) {
      const fd = pathFd;
      pathFd = -1;
      return { reply: { ok: true, stat: toWire(st) }, fd };
    }
    const type = st.mode & S_IFMT;
    if (type !== S_IFREG && type !== S_IFDIR) return refuse(type === 0o120000 ? "ELOOP" : "ENXIO");
    // The gofer's own /proc re-opens exactly the inode checked above.
    const fd = openat(
      AT_FDCWD,
      `/proc/self/fd/${pathFd}`,
      O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (type === S_IFDIR ? O_DIRECTORY : 0),
    );
    return { reply: { ok: true, stat: toWire(st) }, fd };
  } catch (e) {
    return refuse(errnoOf(e));
  } finally {
    if (pathFd >= 0) close(pathFd);
  }
}

/** Answer requests on `sock` until the kernel closes its end. */
export function serve(sock: number, rootFd: number): void {
  for (;;) {
    let msg: ReturnType<typeof recvWithFds>;
    try {
      msg = recvWithFds(sock, MAX_PACKET);
    } catch (e) {
      if (e instanceof SysError && e.code === "EINTR") continue;
      throw e;
    }
    if (msg.eof) return;
    // The kernel never sends descriptors; close any so they cannot pile up.
    for (const fd of msg.fds) close(fd);
    let answer: Answer;
    try {
      answer = msg.truncated ? refuse("ENAMETOOLONG") : answerOpen(rootFd, decode<Request>(msg.data));
    } catch {
      answer = refuse("EINVAL");
    }
    try {
      sendWithFds(sock, encode(answer.reply), answer.fd === undefined ? [] : [answer.fd]);
    } finally {
      if (answer.fd !== undefined) close(answer.fd);
    }
  }
}
