// A system call's failure inside the userkernel: thrown anywhere below a handler (copy-in,
// memory management, file descriptions) and turned into the -errno return by the dispatcher.
import { Errno, type ErrnoName } from "../sys/errno.js";

export class KernelError extends Error {
  readonly errno: number;
  constructor(
    readonly code: ErrnoName,
    detail?: string,
  ) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = "KernelError";
    this.errno = Errno[code];
  }
}

/** Throw -errno out of whatever is serving the current system call. */
export function fail(code: ErrnoName, detail?: string): never {
  throw new KernelError(code, detail);
}

export { Errno };
