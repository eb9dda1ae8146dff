// The one place that loads libc. Every host call moat makes goes through a typed wrapper
// in src/sys; a failing call throws SysError carrying the errno name, so callers can
// branch on `e.code === "ENOENT"` exactly as they do for Node's own fs errors.
import koffi from "koffi";
import { errnoName } from "./errno.js";

export const libc = koffi.load("libc.so.6");

export class SysError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  constructor(syscall: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${syscall}${detail ? ` ${detail}` : ""}: ${code}`);
    this.name = "SysError";
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
  }
}

/** Read the calling thread's errno right after a failed libc call. */
export function lastErrno(): number {
  return koffi.errno();
}

/** Throw SysError when a libc call returned -1 (or a negative value). */
export function check(syscall: string, ret: number | bigint, detail?: string): number {
  const n = Number(ret);
  if (n < 0) throw new SysError(syscall, lastErrno(), detail);
  return n;
}

export { koffi };
