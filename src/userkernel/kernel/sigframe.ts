// The x86-64 signal frame, as Linux builds it (arch/x86/kernel/signal.c, signal_64.c and
// arch/x86/include/uapi/asm/sigcontext.h; facts, not code): where it goes on the stack, what
// it holds, and how rt_sigreturn reads it back.
//
//   struct rt_sigframe {              offset
//     char *pretcode;                 0     sa_restorer: the handler's `ret` goes there
//     struct ucontext uc;             8     uc_flags, uc_link, uc_stack (24), uc_mcontext
//                                           (struct sigcontext, 256), uc_sigmask (8)
//     struct siginfo info;            312   128 bytes
//   };                                440
//   ... the FP state (the fxsave/xsave area, 64-byte aligned) above the frame, with
//   FP_XSTATE_MAGIC1 in its software-reserved bytes and FP_XSTATE_MAGIC2 after its end.
//
// Placement: below the red zone (128 bytes) of the interrupted stack, or at the top of the
// alternate stack for an SA_ONSTACK handler when the thread is not on it already; the FP
// area first, rounded down to 64; then the frame, with rsp ≡ 8 (mod 16) at handler entry,
// as if the handler had been called.
import type { UserRegs } from "../../sys/ptrace.js";
import { KernelError } from "../errno.js";
import type { SigAction } from "./signals-state.js";
import type { AltStack, Task } from "./task.js";

/** What a frame needs of the task's CPU state (platform/cpu.ts's CpuState). */
export interface FrameCpu {
  readonly regs: UserRegs;
  regsChanged(): void;
  fpState(): Buffer;
  setFpState(bytes: Buffer): void;
}

const RED_ZONE = 128n;
const FRAME_SIZE = 440;
const UC = 8;
const UC_FLAGS = UC;
const UC_LINK = UC + 8;
const UC_STACK = UC + 16;
const MCONTEXT = UC + 40;
const UC_SIGMASK = UC + 296;
const INFO = UC + 304;
/** struct sigcontext's general registers, in its order (glibc's REG_R8 ... REG_EFL). */
const GREGS = [
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
  "rdi",
  "rsi",
  "rbp",
  "rbx",
  "rdx",
  "rax",
  "rcx",
  "rsp",
  "rip",
  "eflags",
] as const;
const SC_CS = MCONTEXT + 144;
const SC_SS = MCONTEXT + 150;
const SC_ERR = MCONTEXT + 152;
const SC_TRAPNO = MCONTEXT + 160;
const SC_OLDMASK = MCONTEXT + 168;
const SC_CR2 = MCONTEXT + 176;
const SC_FPSTATE = MCONTEXT + 184;

const UC_FP_XSTATE = 1n;
const UC_SIGCONTEXT_SS = 2n;
const UC_STRICT_RESTORE_SS = 4n;

const FXSAVE_SIZE = 512;
const SW_RESERVED = 464;
const FP_XSTATE_MAGIC1 = 0x46505853;
const FP_XSTATE_MAGIC2 = 0x46505845;
const MXCSR = 24;
const XSTATE_BV = 512;

export const SA_ONSTACK = 0x0800_0000n;
export const SA_RESTORER = 0x0400_0000n;
export const SS_ONSTACK = 1;
export const SS_DISABLE = 2;
export const SS_AUTODISARM = 1 << 31;

/** Flags rt_sigreturn may change (Linux's FIX_EFLAGS: AC OF DF TF SF ZF AF PF CF RF). */
const FIX_EFLAGS = 0x40000n | 0x800n | 0x400n | 0x100n | 0x80n | 0x40n | 0x10n | 0x4n | 0x1n | 0x10000n;
/** Cleared for the handler: TF, DF, RF. */
const HANDLER_CLEARS = 0x100n | 0x400n | 0x10000n;

/** Is `sp` inside the alternate stack? Never while it auto-disarms (Linux's on_sig_stack). */
export function onAltStack(s: AltStack, sp: bigint): boolean {
  if (s.flags & SS_AUTODISARM) return false;
  return sp > s.sp && sp - s.sp <= s.size;
}

/** What sigaltstack and uc_stack report: disabled, on it, or neither. */
export function altStackFlags(s: AltStack, sp: bigint): number {
  return s.size === 0n ? SS_DISABLE : onAltStack(s, sp) ? SS_ONSTACK : 0;
}

/** The fault's trap number as the CPU gives it, for sigcontext.trapno. */
function trapno(sig: number): bigint {
  switch (sig) {
    case 11: // SIGSEGV: page fault
    case 7: // SIGBUS
      return 14n;
    case 8: // SIGFPE: divide error
      return 0n;
    case 4: // SIGILL: invalid opcode
      return 6n;
    case 5: // SIGTRAP: breakpoint
      return 3n;
    default:
      return 0n;
  }
}

/** The software-reserved bytes of an xsave area (struct _fpx_sw_bytes), for `size` bytes. */
function fpxSwBytes(fp: Buffer): Buffer {
  const sw = Buffer.alloc(48);
  // The host's own bytes name the enabled features: either the signal-frame layout (magic1
  // first) or ptrace's (XCR0 first).
  const xfeatures =
    fp.readUInt32LE(SW_RESERVED) === FP_XSTATE_MAGIC1
      ? fp.readBigUInt64LE(SW_RESERVED + 8)
      : fp.readBigUInt64LE(SW_RESERVED);
  sw.writeUInt32LE(FP_XSTATE_MAGIC1, 0);
  sw.writeUInt32LE(fp.length + 4, 4); // extended_size: the area and magic2
  sw.writeBigUInt64LE(xfeatures, 8);
  sw.writeUInt32LE(fp.length, 16); // xstate_size
  return sw;
}

/** The FP state a handler starts with: the init state (Linux clears the user FPU for it). */
function initFp(cur: Buffer): Buffer {
  const b = Buffer.alloc(cur.length);
  b.writeUInt16LE(0x37f, 0); // fcw
  b.writeUInt32LE(0x1f80, MXCSR);
  cur.copy(b, 28, 28, 32); // mxcsr_mask
  if (cur.length > FXSAVE_SIZE) cur.copy(b, SW_RESERVED, SW_RESERVED, FXSAVE_SIZE);
  return b; // xstate_bv 0: every component in its init state
}

export interface Delivery {
  sig: number;
  action: SigAction;
  /** The 128-byte siginfo. */
  info: Buffer;
  /** The mask to restore at rt_sigreturn (the mask before delivery). */
  oldmask: bigint;
}

/**
 * Build the frame for `d` on the task's stack and point the registers at the handler.
 * Throws KernelError (EFAULT) if the frame cannot be written (no restorer, a stack that is
 * not mapped, an overflowing alternate stack): the caller forces SIGSEGV, as Linux does.
 */
export function setupFrame(t: Task, cpu: FrameCpu, d: Delivery): void {
  const r = cpu.regs;
  if (!(d.action.flags & SA_RESTORER))
    throw new KernelError("EFAULT", "no sa_restorer (SA_RESTORER is required on x86-64)");
  const origSp = r.get("rsp");
  let sp = origSp - RED_ZONE;
  const alt = t.altstack;
  let onstack = onAltStack(alt, sp);
  if (d.action.flags & SA_ONSTACK && altStackFlags(alt, sp) === 0) {
    sp = alt.sp + alt.size;
    onstack = true;
  }
  const fp = cpu.fpState();
  const xsave = fp.length > FXSAVE_SIZE;
  sp -= BigInt(fp.length + (xsave ? 4 : 0));
  sp &= ~63n;
  const fpAddr = sp;
  sp -= BigInt(FRAME_SIZE);
  sp = (sp & ~15n) - 8n;
  // The frame must fit the alternate stack it is on (Linux: on_sig_stack must not change).
  if (onstack && !(alt.flags & SS_AUTODISARM) && !onAltStack(alt, sp))
    throw new KernelError("EFAULT", "the signal frame overflows the alternate stack");

  const f = Buffer.alloc(FRAME_SIZE);
  f.writeBigUInt64LE(d.action.restorer, 0);
  f.writeBigUInt64LE(UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | (xsave ? UC_FP_XSTATE : 0n), UC_FLAGS);
  f.writeBigUInt64LE(0n, UC_LINK);
  f.writeBigUInt64LE(alt.sp, UC_STACK);
  f.writeInt32LE(altStackFlags(alt, origSp) | (alt.flags & SS_AUTODISARM), UC_STACK + 8);
  f.writeBigUInt64LE(alt.size, UC_STACK + 16);
  GREGS.forEach((name, i) => {
    f.writeBigUInt64LE(r.get(name), MCONTEXT + i * 8);
  });
  f.writeUInt16LE(Number(r.get("cs") & 0xffffn), SC_CS);
  f.writeUInt16LE(Number(r.get("ss") & 0xffffn), SC_SS);
  const fault = d.info.readInt32LE(8) > 0 && [4, 5, 7, 8, 11].includes(d.sig);
  f.writeBigUInt64LE(fault ? 4n /* a user-mode access */ : 0n, SC_ERR);
  f.writeBigUInt64LE(fault ? trapno(d.sig) : 0n, SC_TRAPNO);
  f.writeBigUInt64LE(d.oldmask, SC_OLDMASK);
  f.writeBigUInt64LE(fault && (d.sig === 11 || d.sig === 7) ? d.info.readBigUInt64LE(16) : 0n, SC_CR2);
  f.writeBigUInt64LE(fpAddr, SC_FPSTATE);
  f.writeBigUInt64LE(d.oldmask, UC_SIGMASK);
  d.info.copy(f, INFO, 0, 128);

  const area = Buffer.alloc(fp.length + (xsave ? 4 : 0));
  fp.copy(area);
  if (xsave) {
    fpxSwBytes(fp).copy(area, SW_RESERVED);
    area.writeUInt32LE(FP_XSTATE_MAGIC2, fp.length);
  }
  // The FP area first: it is above the frame, so a stack that ends faults on the frame.
  t.mm.write(Number(fpAddr), area);
  t.mm.write(Number(sp), f);
  if (alt.flags & SS_AUTODISARM) t.altstack = { sp: 0n, flags: SS_DISABLE, size: 0n };

  r.set("rdi", d.sig);
  r.set("rsi", sp + BigInt(INFO));
  r.set("rdx", sp + BigInt(UC));
  r.set("rax", 0);
  r.set("rip", d.action.handler);
  r.set("rsp", sp);
  r.set("eflags", r.get("eflags") & ~HANDLER_CLEARS);
  // No syscall restart may act on the handler's entry.
  r.set("orig_rax", 0xffffffffffffffffn);
  cpu.regsChanged();
  cpu.setFpState(initFp(fp));
}

/**
 * rt_sigreturn: the registers, the signal mask, the alternate stack and the FP state as the
 * frame at rsp - 8 holds them (the handler's `ret` popped pretcode). Returns the mask to set
 * and the altstack to apply; throws KernelError (EFAULT) on a frame that cannot be read.
 */
export function restoreFrame(t: Task, cpu: FrameCpu): { mask: bigint; stack: AltStack } {
  const r = cpu.regs;
  const base = r.get("rsp") - 8n;
  const f = t.mm.read(Number(base), FRAME_SIZE);
  const flags = r.get("eflags");
  GREGS.forEach((name, i) => {
    if (name !== "eflags") r.set(name, f.readBigUInt64LE(MCONTEXT + i * 8));
  });
  const saved = f.readBigUInt64LE(MCONTEXT + 17 * 8);
  r.set("eflags", (flags & ~FIX_EFLAGS) | (saved & FIX_EFLAGS));
  // cs and ss stay the host's: user code cannot pick its segments.
  r.set("orig_rax", 0xffffffffffffffffn);
  cpu.regsChanged();

  const fpAddr = f.readBigUInt64LE(SC_FPSTATE);
  const cur = cpu.fpState();
  if (fpAddr === 0n) cpu.setFpState(initFp(cur));
  else {
    const ucFlags = f.readBigUInt64LE(UC_FLAGS);
    const head = t.mm.read(Number(fpAddr), FXSAVE_SIZE);
    const full =
      cur.length > FXSAVE_SIZE &&
      ucFlags & UC_FP_XSTATE &&
      head.readUInt32LE(SW_RESERVED) === FP_XSTATE_MAGIC1 &&
      head.readUInt32LE(SW_RESERVED + 16) === cur.length &&
      t.mm.read(Number(fpAddr) + cur.length, 4).readUInt32LE(0) === FP_XSTATE_MAGIC2;
    const next = Buffer.from(cur);
    const user = full ? t.mm.read(Number(fpAddr), cur.length) : head;
    user.copy(next, 0, 0, SW_RESERVED);
    if (full) user.copy(next, FXSAVE_SIZE, FXSAVE_SIZE);
    // What the host's xrstor would refuse: reserved MXCSR bits, unknown features, a compacted
    // or dirty header. Linux fails the sigreturn for most of these; sanitizing keeps the task.
    next.writeUInt32LE(next.readUInt32LE(MXCSR) & (cur.readUInt32LE(28) || 0xffbf), MXCSR);
    if (cur.length > FXSAVE_SIZE) {
      const xfeatures =
        cur.readUInt32LE(SW_RESERVED) === FP_XSTATE_MAGIC1
          ? cur.readBigUInt64LE(SW_RESERVED + 8)
          : cur.readBigUInt64LE(SW_RESERVED);
      const bv = full ? next.readBigUInt64LE(XSTATE_BV) & xfeatures : cur.readBigUInt64LE(XSTATE_BV) | 3n;
      next.writeBigUInt64LE(bv & xfeatures, XSTATE_BV);
      next.fill(0, XSTATE_BV + 8, XSTATE_BV + 64);
    }
    cpu.setFpState(next);
  }
  return {
    mask: f.readBigUInt64LE(UC_SIGMASK),
    stack: {
      sp: f.readBigUInt64LE(UC_STACK),
      flags: f.readInt32LE(UC_STACK + 8),
      size: f.readBigUInt64LE(UC_STACK + 16),
    },
  };
}
