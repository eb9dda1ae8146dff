// Unix sockets that carry descriptors: the userkernel and its gofer talk over a
// SOCK_SEQPACKET socketpair (one message per packet, boundaries kept) and pass open host
// files with SCM_RIGHTS. Built on sendmsg/recvmsg because Node's net module cannot attach
// descriptors to a message.
import { check, koffi, libc, SysError } from "./libc.js";

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_SEQPACKET = 5;
export const SOCK_CLOEXEC = 0o2000000;
export const SOCK_NONBLOCK = 0o4000;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const MSG_CTRUNC = 0x08;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
/** Descriptors one message may carry (the kernel's SCM_MAX_FD is 253). */
export const MAX_FDS_PER_MESSAGE = 16;

const iovec = koffi.struct("moat_iovec", { base: "void *", len: "size_t" });
koffi.struct("moat_msghdr", {
  name: "void *",
  namelen: "uint32_t",
  iov: koffi.pointer(iovec),
  iovlen: "size_t",
  control: "void *",
  controllen: "size_t",
  flags: "int",
});
const socketpair_ = libc.func("int socketpair(int domain, int type, int protocol, _Out_ int *sv)");
const sendmsg_ = libc.func("intptr_t sendmsg(int fd, const moat_msghdr *msg, int flags)");
const recvmsg_ = libc.func("intptr_t recvmsg(int fd, _Inout_ moat_msghdr *msg, int flags)");
const close_ = libc.func("int close(int fd)");
const shutdown_ = libc.func("int shutdown(int fd, int how)");

/** socketpair(2); returns both ends. Close-on-exec unless `cloexec` is false. */
export function socketpair(type = SOCK_SEQPACKET, cloexec = true): [number, number] {
  const sv = [0, 0];
  check("socketpair", socketpair_(AF_UNIX, type | (cloexec ? SOCK_CLOEXEC : 0), 0, sv));
  return [sv[0]!, sv[1]!];
}

function cmsgSpace(nfds: number): number {
  return 16 + ((nfds * 4 + 7) & ~7);
}

/** Send one message, with `fds` attached as SCM_RIGHTS. Returns the bytes sent. */
export function sendWithFds(sock: number, data: Buffer, fds: number[] = [], flags = MSG_NOSIGNAL): number {
  if (fds.length > MAX_FDS_PER_MESSAGE) throw new SysError("sendmsg", 22, "too many descriptors");
  let control: Buffer | null = null;
  if (fds.length > 0) {
    control = Buffer.alloc(cmsgSpace(fds.length));
    control.writeBigUInt64LE(BigInt(16 + fds.length * 4), 0);
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    for (const [i, fd] of fds.entries()) control.writeInt32LE(fd, 16 + i * 4);
  }
  const msg = {
    name: null,
    namelen: 0,
    iov: [{ base: data, len: data.length }],
    iovlen: 1,
    control,
    controllen: control ? control.length : 0,
    flags: 0,
  };
  return check("sendmsg", sendmsg_(sock, msg, flags));
}

export interface Received {
  /** The message; an empty buffer with `eof` set means the peer closed. */
  data: Buffer;
  fds: number[];
  eof: boolean;
  /** The message or its descriptors did not fit (fds that did not fit are lost, by the kernel). */
  truncated: boolean;
}

function parseControl(control: Buffer, len: number): number[] {
  const fds: number[] = [];
  let off = 0;
  while (off + 16 <= len) {
    const clen = Number(control.readBigUInt64LE(off));
    if (clen < 16) break;
    if (control.readInt32LE(off + 8) === SOL_SOCKET && control.readInt32LE(off + 12) === SCM_RIGHTS)
      for (let p = off + 16; p + 4 <= off + clen; p += 4) fds.push(control.readInt32LE(p));
    off += (clen + 7) & ~7;
  }
  return fds;
}

let scratch = Buffer.alloc(16384);
const control = Buffer.alloc(cmsgSpace(MAX_FDS_PER_MESSAGE));

/**
 * Receive one message (up to `max` bytes) and the descriptors attached to it, which arrive
 * close-on-exec. With MSG_DONTWAIT in `flags` an empty socket throws SysError EAGAIN.
 */
export function recvWithFds(sock: number, max = 65536, flags = 0): Received {
  // Receive into reused scratch space and copy out only the message: a fresh 64 KiB buffer
  // per call costs more than the system call.
  if (scratch.length < max) scratch = Buffer.alloc(max);
  const data = scratch;
  const msg = {
    name: null,
    namelen: 0,
    iov: [{ base: data, len: max }],
    iovlen: 1,
    control,
    controllen: control.length,
    flags: 0,
  };
  const n = check("recvmsg", recvmsg_(sock, msg, flags | MSG_CMSG_CLOEXEC));
  const fds = parseControl(control, Number(msg.controllen));
  return {
    data: Buffer.from(data.subarray(0, n)),
    fds,
    eof: n === 0 && fds.length === 0,
    truncated: (msg.flags & (MSG_TRUNC | MSG_CTRUNC)) !== 0,
  };
}

/** Watch a descriptor from the event loop (uv_poll): `onReadable` runs when it has data or hung up. */
export interface FdWatcher {
  stop(): void;
  ref(): void;
  unref(): void;
}

export function watchReadable(fd: number, onReadable: () => void): FdWatcher {
  const h = koffi.node.poll(fd, { readable: true, disconnect: true }, () => onReadable());
  return {
    stop: () => h.close(),
    ref: () => h.ref(),
    unref: () => h.unref(),
  };
}

export function closeFd(fd: number): void {
  check("close", close_(fd), String(fd));
}

export const SHUT_RDWR = 2;
export function shutdown(fd: number, how = SHUT_RDWR): void {
  check("shutdown", shutdown_(fd, how), String(fd));
}

// Listening and connecting unix sockets, for the places Node's net module cannot serve:
// sockets whose messages carry descriptors (SCM_RIGHTS) on both ends.
const socket_ = libc.func("int socket(int domain, int type, int protocol)");
const bind_ = libc.func("int bind(int fd, const void *addr, uint32_t len)");
const listen_ = libc.func("int listen(int fd, int backlog)");
const accept4_ = libc.func("int accept4(int fd, void *addr, void *len, int flags)");
const connect_ = libc.func("int connect(int fd, const void *addr, uint32_t len)");

/** struct sockaddr_un for a path (sun_path is 108 bytes with its NUL). */
function sockaddrUn(path: string): Buffer {
  const name = Buffer.from(path);
  if (name.length >= 108) throw new SysError("sockaddr_un", 36 /* ENAMETOOLONG */, path);
  const addr = Buffer.alloc(2 + name.length + 1);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, 2);
  return addr;
}

/** A listening unix socket bound at `path` (non-blocking, close-on-exec). */
export function unixListen(path: string, type = SOCK_SEQPACKET, backlog = 16): number {
  const fd = check("socket", socket_(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  try {
    const addr = sockaddrUn(path);
    check("bind", bind_(fd, addr, addr.length), path);
    check("listen", listen_(fd, backlog), path);
    return fd;
  } catch (e) {
    close_(fd);
    throw e;
  }
}

/** Connect to the unix socket at `path` (blocking, close-on-exec). */
export function unixConnect(path: string, type = SOCK_SEQPACKET): number {
  const fd = check("socket", socket_(AF_UNIX, type | SOCK_CLOEXEC, 0));
  try {
    const addr = sockaddrUn(path);
    check("connect", connect_(fd, addr, addr.length), path);
    return fd;
  } catch (e) {
    close_(fd);
    throw e;
  }
}

/** accept4(2): the next connection, non-blocking and close-on-exec; EAGAIN when none waits. */
export function accept(fd: number): number {
  return check("accept4", accept4_(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC));
}
