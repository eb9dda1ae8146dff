// Host pseudo-terminals, for runc's console socket: a pty pair whose master goes to the
// caller (sent over a unix socket) and whose slave becomes a container process's stdio.
// Node can neither allocate a pty nor read or set a window size on an arbitrary descriptor.
import { check, libc, SysError } from "./libc.js";

const O_RDWR = 2;
const O_NOCTTY = 0o400;
const O_CLOEXEC = 0o2000000;
const TCSANOW = 0;
const TIOCGWINSZ = 0x5413;
const TIOCSWINSZ = 0x5414;
// glibc's struct termios on x86-64 is 60 bytes; a larger buffer costs nothing.
const TERMIOS_SIZE = 64;

const posix_openpt_ = libc.func("int posix_openpt(int flags)");
const grantpt_ = libc.func("int grantpt(int fd)");
const unlockpt_ = libc.func("int unlockpt(int fd)");
const ptsname_r_ = libc.func("int ptsname_r(int fd, _Out_ char *buf, size_t len)");
const open_ = libc.func("int open(const char *path, int flags, uint32_t mode)");
const close_ = libc.func("int close(int fd)");
const tcgetattr_ = libc.func("int tcgetattr(int fd, void *termios)");
const tcsetattr_ = libc.func("int tcsetattr(int fd, int action, const void *termios)");
const cfmakeraw_ = libc.func("void cfmakeraw(void *termios)");
const ioctl_ = libc.func("int ioctl(int fd, unsigned long request, ...)");

export interface Pty {
  /** The master side (close-on-exec): what a terminal emulator or conmon reads and writes. */
  master: number;
  /** The slave side (close-on-exec, not a controlling terminal of ours): the process's stdio. */
  slave: number;
  /** The slave's path, /dev/pts/N. */
  name: string;
}

/** A new pty pair. */
export function openPty(): Pty {
  const master = check("posix_openpt", posix_openpt_(O_RDWR | O_NOCTTY | O_CLOEXEC));
  try {
    check("grantpt", grantpt_(master));
    check("unlockpt", unlockpt_(master));
    const buf = Buffer.alloc(128);
    // ptsname_r returns an errno number rather than setting errno.
    const rc = ptsname_r_(master, buf, buf.length) as number;
    if (rc !== 0) throw new SysError("ptsname_r", rc);
    const name = buf.toString("latin1", 0, buf.indexOf(0));
    const slave = check("open", open_(name, O_RDWR | O_NOCTTY | O_CLOEXEC, 0), name);
    return { master, slave, name };
  } catch (e) {
    close_(master);
    throw e;
  }
}

/**
 * Raw mode (cfmakeraw): no echo, no line editing, no output processing, no signals from keys.
 * For a pty that only relays bytes to a terminal that has a line discipline of its own.
 */
export function makeRaw(fd: number): void {
  const t = Buffer.alloc(TERMIOS_SIZE);
  check("tcgetattr", tcgetattr_(fd, t), String(fd));
  cfmakeraw_(t);
  check("tcsetattr", tcsetattr_(fd, TCSANOW, t), String(fd));
}

export interface WinSize {
  rows: number;
  columns: number;
}

/** The terminal's window size (TIOCGWINSZ); 0x0 when nobody set one. */
export function getWinSize(fd: number): WinSize {
  const ws = Buffer.alloc(8);
  check("ioctl", ioctl_(fd, TIOCGWINSZ, "void *", ws), `TIOCGWINSZ ${fd}`);
  return { rows: ws.readUInt16LE(0), columns: ws.readUInt16LE(2) };
}

/** Set the terminal's window size (TIOCSWINSZ). */
export function setWinSize(fd: number, size: WinSize): void {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(size.rows, 0);
  ws.writeUInt16LE(size.columns, 2);
  check("ioctl", ioctl_(fd, TIOCSWINSZ, "void *", ws), `TIOCSWINSZ ${fd}`);
}

export function closePtyFd(fd: number): void {
  check("close", close_(fd), String(fd));
}
