// Typed errors (a leaf, so every floor can throw them). Every error moat shows a person carries an errno-style code (for
// programs, and for the userkernel's syscall returns) and a message that says what is
// wrong and what to do.
export type ErrorCode =
  | "EINVAL"
  | "ENOENT"
  | "ELOOP"
  | "EEXIST"
  | "EACCES"
  | "EPERM"
  | "EIO"
  | "EBUSY"
  | "ENOSYS"
  | "ENOTSUP"
  | "ETIMEDOUT"
  | "ECONNREFUSED"
  | "EPROTO"
  | "EAUTH"
  | "EDIGEST"
  | "ESTATE"
  | "EUNSAFE"
  | "ENOPLATFORM";

export class MoatError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "MoatError";
  }
}

export function isMoatError(e: unknown, code?: ErrorCode): e is MoatError {
  return e instanceof MoatError && (code === undefined || e.code === code);
}
