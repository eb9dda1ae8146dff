// The shape of a system call handler and the conversions handlers apply to raw registers.
import { fail } from "../errno.js";
import type { Task } from "../kernel/task.js";
import type { ExitStatus } from "../kernel/thread-group.js";

/** rdi, rsi, rdx, r10, r8, r9 as the application left them (unsigned 64-bit). */
export type Args = readonly bigint[];

/**
 * What a handler tells the run loop instead of a return value:
 * - exit: the thread ends (`group`: exit_group, the whole process) with `status`;
 * - restart: the system call runs again once the task returns to it (after signals);
 * - noreturn: the handler set the registers itself (execve's new program).
 */
export type Control =
  | { kind: "exit"; status: ExitStatus; group: boolean }
  | { kind: "restart" }
  | { kind: "noreturn" };

/** A result >= 0, or -errno, or a Control value; handlers may also throw KernelError. */
export type Result = number | bigint | Control;

export type Handler = (t: Task, a: Args) => Result | Promise<Result>;

export type Support = "full" | "partial" | "error" | "none";

export interface SyscallEntry {
  name: string;
  handler: Handler;
  /**
   * full: Linux semantics; partial: the common cases (see note); error: always fails by
   * design; none: not served (ENOSYS).
   */
  support: Support;
  note?: string;
}

/** A C int argument (the low 32 bits, signed). */
export function int(v: bigint | undefined): number {
  return Number(BigInt.asIntN(32, v ?? 0n));
}

/** A C unsigned int argument. */
export function uint(v: bigint | undefined): number {
  return Number(BigInt.asUintN(32, v ?? 0n));
}

/** A signed long argument (precision beyond 2^53 is irrelevant for the values handlers accept). */
export function long(v: bigint | undefined): number {
  return Number(BigInt.asIntN(64, v ?? 0n));
}

/**
 * A user address or a size. Values beyond 2^53 map to a huge number that fails any range
 * check, so a hostile value cannot wrap into a valid one.
 */
export function addr(v: bigint | undefined): number {
  const x = v ?? 0n;
  return x > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(x);
}

/** A size that must fit the address space; EINVAL (or `code`) otherwise. */
export function size(v: bigint | undefined, code: "EINVAL" | "EFAULT" | "ENOMEM" = "EINVAL"): number {
  const x = v ?? 0n;
  if (x > 0x7fff_ffff_f000n) fail(code);
  return Number(x);
}
