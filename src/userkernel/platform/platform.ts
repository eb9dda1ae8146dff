// How the kernel runs application code. A Platform is one address space with one thread
// of application code in it: it runs that code until the next system call (or fault), lets
// the kernel read and change the registers, and changes the host mappings of the address
// space on the kernel's behalf. ptrace is the first implementation; a faster one (seccomp
// trap, shared-memory stub) will implement the same interface.
import type { UserRegs } from "../../sys/ptrace.js";

/** Why application code stopped running. */
export type StopEvent =
  /** A system call, not executed by the host; number and arguments are in the registers. */
  | { kind: "syscall" }
  /** A signal the application raised or incurred (a fault, an int3, a host kill). */
  | { kind: "signal"; signal: number }
  /** The address-space process is gone. */
  | { kind: "exited"; code: number }
  | { kind: "killed"; signal: number };

/** The kernel's view of the host mappings of one address space. */
export interface MappingInstaller {
  /** Map memory-file bytes [fileOffset, fileOffset+length) at addr, replacing whatever is there. */
  map(addr: number, length: number, prot: number, fileOffset: number): void;
  unmap(addr: number, length: number): void;
  protect(addr: number, length: number, prot: number): void;
}

export interface Platform extends MappingInstaller {
  /** Host pid of the process backing the address space (diagnostics and tests only). */
  readonly hostPid: number;
  /** Host address ranges inside the address space that the application must never get. */
  readonly reserved: ReadonlyArray<{ start: number; end: number }>;
  /** Application registers as of the last stop; change them, then call regsChanged(). */
  readonly regs: UserRegs;
  /** Start application code at `entry` with stack pointer `sp` and all else zeroed. */
  setEntry(entry: number, sp: number): void;
  /** Run application code until it stops again. */
  run(): Promise<StopEvent>;
  /** Set the return value of the system call the application is stopped in. */
  setReturn(value: bigint): void;
  /** Registers other than rax were changed in `regs` (e.g. fs_base). */
  regsChanged(): void;
  /** Run one host system call inside the address-space process; returns raw rax. */
  inject(nr: number, args: Array<number | bigint>): bigint;
  /** Kill the process and reap it. Safe to call more than once. */
  kill(): void;
}

export function syscallNumber(regs: UserRegs): number {
  return Number(regs.u64[15]!);
}
