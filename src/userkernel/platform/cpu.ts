// One application thread's CPU state, owned by its task: the general registers (always
// current after a stop) and the FP/vector state (fetched from the host thread only when the
// kernel asks, which is only for signal frames). Dirty marks tell the platform what it must
// write back before the thread runs again, so the common syscall round trip writes only rax.
import { UserRegs } from "../../sys/ptrace.js";

/** What has to be written to the host thread before it runs this state again. */
export type Dirty = "none" | "rax" | "all";

/** Where FP state lives while the kernel has not read it: the host thread that last ran it. */
export interface FpSource {
  readFp(): Buffer;
}

const NO_SYSCALL = 0xffffffffffffffffn;
const GENERAL = [
  "r15",
  "r14",
  "r13",
  "r12",
  "rbp",
  "rbx",
  "r11",
  "r10",
  "r9",
  "r8",
  "rax",
  "rcx",
  "rdx",
  "rsi",
  "rdi",
  "fs_base",
  "gs_base",
] as const;

export class CpuState {
  readonly regs = new UserRegs();
  /** Registers changed by the kernel since the last stop. */
  dirty: Dirty = "none";
  /** The FP state as bytes (the XSAVE layout, or FXSAVE's 512 bytes without XSAVE), if fetched. */
  private fp: Buffer | undefined;
  /** The bytes in `fp` differ from the host thread's and must be written before it runs. */
  fpDirty = false;
  /** The host thread holding the current FP state when `fp` is not fetched. */
  fpSource: FpSource | undefined;

  /** The return value of the system call the thread stopped in. */
  setReturn(value: bigint): void {
    this.regs.set("rax", value);
    if (this.dirty === "none") this.dirty = "rax";
  }

  /** Registers other than rax were changed in `regs` (rip, rsp, fs_base, a signal frame). */
  regsChanged(): void {
    this.dirty = "all";
  }

  /** Start at `entry` with stack pointer `sp` and every other register zeroed, as execve. */
  setEntry(entry: number, sp: number): void {
    // Segment selectors (cs, ss, ds, es, fs, gs) keep what the host gave the thread: SETREGS
    // refuses made-up ones. A state that never ran gets the host thread's (switchTo).
    for (const name of GENERAL) this.regs.set(name, 0);
    this.regs.set("orig_rax", NO_SYSCALL);
    this.regs.set("rip", entry);
    this.regs.set("rsp", sp);
    this.regs.set("eflags", 0x202); // IF, plus the always-one bit 1, as the host's start_thread does
    this.dirty = "all";
  }

  /** The FP/vector state, fetched from the host thread on first use after a stop. */
  fpState(): Buffer {
    if (!this.fp) {
      if (!this.fpSource) throw new Error("CpuState has no FP state yet: it never ran");
      this.fp = this.fpSource.readFp();
    }
    return this.fp;
  }

  /** Replace the FP state (sigreturn); written to the host thread before it runs again. */
  setFpState(bytes: Buffer): void {
    this.fp = Buffer.from(bytes);
    this.fpDirty = true;
  }

  /** The thread ran: the host now holds newer FP state than any bytes kept here. */
  ranOn(source: FpSource): void {
    this.fp = undefined;
    this.fpDirty = false;
    this.fpSource = source;
  }

  /** FP bytes if the kernel has them (fetched or set), without fetching. */
  fetchedFp(): Buffer | undefined {
    return this.fp;
  }

  /** A copy for a new thread or process (clone, fork): registers and FP state. */
  clone(): CpuState {
    const c = new CpuState();
    c.regs.copyFrom(this.regs);
    c.dirty = "all";
    if (this.fp || this.fpSource) c.setFpState(this.fpState());
    return c;
  }
}
