// The gofer's request loop. It runs in its own process, holds a descriptor of each root it
// serves (the rootfs, and the sources of the container's bind mounts) and nothing else of
// the host, and answers requests relative to those roots. Every path goes through
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): ".." and absolute symlinks are clamped
// at the root, so no name the image or a volume contains reaches the host beyond it. Device
// nodes, FIFOs and sockets are only ever opened O_PATH (opening a device can have effects,
// and a FIFO would block the gofer); files and directories are re-opened through the O_PATH
// descriptor itself, so the file checked is the file opened. Changes (read-write roots only)
// name one component beneath a parent directory opened the same confined way.
import {
  AT_FDCWD,
  close,
  fstat,
  type HostStat,
  O_ACCMODE,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  openat,
  openat2,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
} from "../../sys/file.js";
import {
  AT_REMOVEDIR,
  fchmodat,
  fchownEmpty,
  ftruncate,
  linkat,
  mkdirat,
  renameat2,
  symlinkat,
  unlinkat,
  utimensat,
} from "../../sys/fileat.js";
import { SysError } from "../../sys/libc.js";
import { recvWithFds, sendWithFds } from "../../sys/socket.js";
import {
  decode,
  encode,
  MAX_PACKET,
  type OpenRequest,
  type Reply,
  type Request,
  type SetattrRequest,
  toWire,
} from "./protocol.js";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
/** The only flags a request may carry; anything else (a write, create, truncate) is refused. */
const READ_FLAGS = O_PATH | O_DIRECTORY | O_NOFOLLOW;
/** What a read-write root also accepts: writing an existing file, or creating a new one. */
const WRITE_FLAGS = READ_FLAGS | O_ACCMODE | O_CREAT | O_EXCL;
const PATH_MAX = 4096;
const RESOLVE_WALKED = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;

/** One root the gofer serves: a directory (the rootfs, a directory volume) or a single file. */
export interface Root {
  fd: number;
  writable: boolean;
  dir: boolean;
}

type Answer = { reply: Reply; fd?: number };

function refuse(errno: string): Answer {
  return { reply: { ok: false, errno } };
}

function errnoOf(e: unknown): string {
  if (e instanceof SysError) return e.code;
  return "EIO";
}

function badPath(p: unknown): boolean {
  return typeof p !== "string" || p.length === 0 || p.length >= PATH_MAX || p.includes("\0");
}

/** Whether the gofer may hand files to other owners (it can only as root). */
const privileged = typeof process.getuid === "function" && process.getuid() === 0;

/** What was just made at `name`: given to its creator, and its stat for the reply. */
function created(dirFd: number, name: string, uid: number, gid: number): Answer {
  const fd = openat2(dirFd, name, O_PATH | O_CLOEXEC | O_NOFOLLOW, RESOLVE_WALKED);
  try {
    chownNew(fd, uid, gid);
    return { reply: { ok: true, stat: toWire(fstat(fd)) } };
  } finally {
    close(fd);
  }
}

function chownNew(fd: number, uid: unknown, gid: unknown): void {
  if (!privileged || typeof uid !== "number" || typeof gid !== "number") return;
  fchownEmpty(fd, uid, gid);
}

/** An O_PATH descriptor of `path` beneath `root`, no symlink followed (a trailing one is returned as such). */
function walked(root: Root, path: string, extra = 0): number {
  if (!root.dir) {
    if (path !== ".") throw new SysError("openat2", 20 /* ENOTDIR */, path);
    return openat(AT_FDCWD, `/proc/self/fd/${root.fd}`, O_PATH | O_CLOEXEC | extra);
  }
  return openat2(root.fd, path, O_PATH | O_CLOEXEC | O_NOFOLLOW | extra, RESOLVE_WALKED);
}

/** Split a path into its parent's descriptor and its last component (which must be a name). */
function parentOf(root: Root, path: string): { dirFd: number; name: string } {
  const cut = path.lastIndexOf("/");
  const name = cut < 0 ? path : path.slice(cut + 1);
  const dir = cut < 0 ? "." : path.slice(0, cut) || ".";
  if (!root.dir) throw new SysError("openat2", 20 /* ENOTDIR */, path);
  if (name === "" || name === "." || name === "..") throw new SysError("openat2", 22 /* EINVAL */, path);
  return { dirFd: walked(root, dir, O_DIRECTORY), name };
}

/** Reopen an O_PATH descriptor of a regular file or directory for I/O. */
function reopen(pathFd: number, flags: number): number {
  return openat(AT_FDCWD, `/proc/self/fd/${pathFd}`, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

function openAnswer(root: Root, req: OpenRequest): Answer {
  if (typeof req.flags !== "number") return refuse("EINVAL");
  const acc = req.flags & O_ACCMODE;
  if ((req.flags & ~(root.writable ? WRITE_FLAGS : READ_FLAGS)) !== 0 || (!root.writable && acc !== O_RDONLY))
    return refuse("EROFS");
  if ((req.flags & O_CREAT) !== 0) return createAnswer(root, req);
  if (acc === O_ACCMODE) return refuse("EINVAL");
  const resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (req.follow ? 0 : RESOLVE_NO_SYMLINKS);
  const pathFlags =
    O_PATH | O_CLOEXEC | (req.follow ? req.flags & O_NOFOLLOW : O_NOFOLLOW) | (req.flags & O_DIRECTORY);
  let pathFd: number;
  try {
    if (!root.dir) pathFd = walked(root, req.path);
    else pathFd = openat2(root.fd, req.path, pathFlags, resolve);
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
    if (type !== S_IFREG && type !== S_IFDIR) return refuse(type === S_IFLNK ? "ELOOP" : "ENXIO");
    if (type === S_IFDIR && acc !== O_RDONLY) return refuse("EISDIR");
    // The gofer's own /proc re-opens exactly the inode checked above.
    const fd = reopen(pathFd, acc | (type === S_IFDIR ? O_DIRECTORY : 0));
    return { reply: { ok: true, stat: toWire(st) }, fd };
  } catch (e) {
    return refuse(errnoOf(e));
  } finally {
    if (pathFd >= 0) close(pathFd);
  }
}

/** A new regular file (O_CREAT|O_EXCL: the kernel already found the name free), read-write. */
function createAnswer(root: Root, req: OpenRequest): Answer {
  if ((req.flags & O_EXCL) === 0) return refuse("EINVAL");
  return inParent(root, req.path, (dirFd, name) => {
    const fd = openat2(
      dirFd,
      name,
      O_CREAT | O_EXCL | (req.flags & O_ACCMODE) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
      RESOLVE_WALKED,
      (req.mode ?? 0o644) & 0o7777,
    );
    try {
      chownNew(fd, req.uid, req.gid);
      return { reply: { ok: true, stat: toWire(fstat(fd)) }, fd };
    } catch (e) {
      close(fd);
      throw e;
    }
  });
}

/** Run `f` with the parent directory of `path` open; errors become errno replies. */
function inParent(root: Root, path: string, f: (dirFd: number, name: string) => Answer): Answer {
  if (!root.writable) return refuse("EROFS");
  let dirFd = -1;
  try {
    const p = parentOf(root, path);
    dirFd = p.dirFd;
    return f(dirFd, p.name);
  } catch (e) {
    return refuse(errnoOf(e));
  } finally {
    if (dirFd >= 0) close(dirFd);
  }
}

/** The stat of `name` in `dirFd` after a change, without following it. */
function statAt(dirFd: number, name: string): HostStat {
  const fd = openat2(dirFd, name, O_PATH | O_CLOEXEC | O_NOFOLLOW, RESOLVE_WALKED);
  try {
    return fstat(fd);
  } finally {
    close(fd);
  }
}

function setattrAnswer(root: Root, req: SetattrRequest): Answer {
  if (!root.writable) return refuse("EROFS");
  let fd = -1;
  try {
    fd = walked(root, req.path);
    const st = fstat(fd);
    const self = `/proc/self/fd/${fd}`;
    if (typeof req.size === "number") {
      if ((st.mode & S_IFMT) !== S_IFREG) return refuse((st.mode & S_IFMT) === S_IFDIR ? "EISDIR" : "EINVAL");
      const w = reopen(fd, O_WRONLY);
      try {
        ftruncate(w, req.size);
      } finally {
        close(w);
      }
    }
    if (typeof req.mode === "number") {
      if ((st.mode & S_IFMT) === S_IFLNK) return refuse("EOPNOTSUPP");
      fchmodat(AT_FDCWD, self, req.mode & 0o7777);
    }
    if (typeof req.uid === "number" || typeof req.gid === "number")
      fchownEmpty(fd, req.uid ?? -1, req.gid ?? -1);
    if (req.atimeNs !== undefined || req.mtimeNs !== undefined)
      utimensat(
        AT_FDCWD,
        self,
        req.atimeNs === undefined ? null : BigInt(req.atimeNs),
        req.mtimeNs === undefined ? null : BigInt(req.mtimeNs),
      );
    return { reply: { ok: true, stat: toWire(fstat(fd)) } };
  } catch (e) {
    return refuse(errnoOf(e));
  } finally {
    if (fd >= 0) close(fd);
  }
}

/** Serve one request against `roots`. Exported for the gofer's own tests. */
export function answerRequest(roots: readonly Root[], req: Request): Answer {
  const root = roots[req.root ?? 0];
  if (!root || typeof req !== "object") return refuse("EINVAL");
  switch (req.op) {
    case "open":
      if (badPath(req.path)) return refuse("EINVAL");
      return openAnswer(root, req);
    case "mkdir":
      if (badPath(req.path)) return refuse("EINVAL");
      return inParent(root, req.path, (dirFd, name) => {
        mkdirat(dirFd, name, req.mode & 0o7777);
        return created(dirFd, name, req.uid, req.gid);
      });
    case "symlink":
      if (badPath(req.path) || badPath(req.target)) return refuse("EINVAL");
      return inParent(root, req.path, (dirFd, name) => {
        // The target is only text here: the kernel resolves it, inside the container.
        symlinkat(req.target, dirFd, name);
        return created(dirFd, name, req.uid, req.gid);
      });
    case "unlink":
      if (badPath(req.path)) return refuse("EINVAL");
      return inParent(root, req.path, (dirFd, name) => {
        unlinkat(dirFd, name, req.dir ? AT_REMOVEDIR : 0);
        return { reply: { ok: true } };
      });
    case "rename":
    case "link": {
      if (badPath(req.from) || badPath(req.to)) return refuse("EINVAL");
      const flags = req.op === "rename" ? req.flags : 0;
      return inParent(root, req.from, (fromFd, fromName) =>
        inParent(root, req.to, (toFd, toName) => {
          if (req.op === "rename") renameat2(fromFd, fromName, toFd, toName, flags);
          else linkat(fromFd, fromName, toFd, toName, 0);
          return { reply: { ok: true, stat: toWire(statAt(toFd, toName)) } };
        }),
      );
    }
    case "setattr":
      if (badPath(req.path)) return refuse("EINVAL");
      return setattrAnswer(root, req);
    default:
      return refuse("EINVAL");
  }
}

/** Answer requests on `sock` until the kernel closes its end. */
export function serve(sock: number, roots: readonly Root[]): void {
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
      answer = msg.truncated ? refuse("ENAMETOOLONG") : answerRequest(roots, decode<Request>(msg.data));
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
