// How the kernel runs application code (the model is gVisor's pkg/sentry/platform). A
// Platform makes host address spaces; each holds application memory (mapped from the
// kernel's memory file) and any number of contexts, one per application thread, each a host
// thread that runs that thread's code until its next system call, fault or interruption.
// Registers and FP state belong to the task (CpuState); a context only loads them before it
// runs and saves them when it stops. ptrace is the first implementation; a seccomp-trap
// platform implements the same interface.
import type { SigInfo } from "../../sys/ptrace.js";
import type { CpuState } from "./cpu.js";

export type { SigInfo } from "../../sys/ptrace.js";
export { CpuState } from "./cpu.js";

/** Why application code stopped running. */
export type StopEvent =
  /** A system call, not executed by the host; number and arguments are in the registers. */
  | { kind: "syscall" }
  /**
   * A signal the application raised or incurred: a fault (SIGSEGV with si_addr and si_code),
   * an int3, a host signal. `info` is what the host reported, for the app's own siginfo.
   */
  | { kind: "signal"; signal: number; info: SigInfo }
  /** interrupt() was called (or the kernel must look at the thread for another reason). */
  | { kind: "interrupted" }
  /** The host thread is gone: its process exited or was killed from outside. */
  | { kind: "exited"; code: number }
  | { kind: "killed"; signal: number };

/** The kernel's view of the host mappings of one address space. */
export interface MappingInstaller {
  /** Map memory-file bytes [fileOffset, fileOffset+length) at addr, replacing whatever is there. */
  map(addr: number, length: number, prot: number, fileOffset: number): void;
  unmap(addr: number, length: number): void;
  protect(addr: number, length: number, prot: number): void;
}

/** One host address space (ptrace: one stub process) holding application memory. */
export interface HostAddressSpace extends MappingInstaller {
  /** Host pid of the process backing it (diagnostics, CPU time, tests). */
  readonly hostPid: number;
  /** Host address ranges inside the address space that the application must never get. */
  readonly reserved: ReadonlyArray<{ start: number; end: number }>;
  /**
   * A context for an application thread. The first call gives the address space's first
   * thread; later ones make a new host thread, cloned through the stopped thread of `from`
   * (any stopped thread when omitted). A new context starts stopped.
   */
  newContext(from?: Context): Context;
  /** End every thread and the address space. Safe to call more than once. */
  release(): void;
}

/** One application thread's host thread. */
export interface Context {
  readonly hostTid: number;
  /**
   * Load `cpu` (what its dirty marks say changed), run the thread until it stops, save the
   * registers back into `cpu`. One switchTo at a time per context.
   */
  switchTo(cpu: CpuState): Promise<StopEvent>;
  /** Make a running switchTo return `{kind: "interrupted"}` soon; harmless when stopped. */
  interrupt(): void;
  /** End this host thread (not the others). Safe to call more than once. */
  release(): void;
}

export interface Platform {
  /** A fresh host address space over the memory file `memfd`, empty of mappings. */
  newAddressSpace(memfd: number): HostAddressSpace;
}

/**
 * The one-process, one-thread shape today's kernel drives (PtracePlatform), kept while the
 * kernel moves to address spaces, contexts and task-owned CpuStates.
 */
export interface ProcessPlatform extends MappingInstaller {
  readonly hostPid: number;
  readonly reserved: ReadonlyArray<{ start: number; end: number }>;
  /** Application registers as of the last stop; change them, then call regsChanged(). */
  readonly regs: CpuState["regs"];
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

export function syscallNumber(regs: { u64: BigUint64Array }): number {
  return Number(regs.u64[15]!);
}
