// ptrace(2) for the userkernel's ptrace platform, x86-64 only. Every call here must run on
// the thread that attached the tracee (the main thread); only waitpid may run elsewhere.
import { check, koffi, libc } from "./libc.js";

export const PTRACE_TRACEME = 0;
export const PTRACE_PEEKUSER = 3;
export const PTRACE_POKEUSER = 6;
export const PTRACE_CONT = 7;
export const PTRACE_KILL = 8;
export const PTRACE_GETREGS = 12;
export const PTRACE_SETREGS = 13;
export const PTRACE_ATTACH = 16;
export const PTRACE_DETACH = 17;
export const PTRACE_SYSEMU = 31;
export const PTRACE_GETSIGINFO = 0x4202;
export const PTRACE_GETREGSET = 0x4204;
export const PTRACE_SETREGSET = 0x4205;
export const PTRACE_SETOPTIONS = 0x4200;
export const PTRACE_GETEVENTMSG = 0x4201;
export const PTRACE_SEIZE = 0x4206;
export const PTRACE_INTERRUPT = 0x4207;

export const PTRACE_O_TRACESYSGOOD = 0x1;
export const PTRACE_O_TRACECLONE = 0x8;
export const PTRACE_O_TRACEEXIT = 0x40;
/** The event number a PTRACE_O_TRACECLONE stop reports in bits 16-23 of the wait status. */
export const PTRACE_EVENT_CLONE = 3;

/** Register-set types for GETREGSET/SETREGSET (elf.h). */
export const NT_PRFPREG = 2;
export const NT_X86_XSTATE = 0x202;
export const PTRACE_O_EXITKILL = 0x100000;

// glibc declares ptrace variadic; on x86-64 integer varargs travel in the same registers as
// fixed ones, so fixed prototypes are safe and much cheaper to call through koffi.
const ptraceWord = libc.func("long ptrace(int request, int pid, uintptr_t addr, uintptr_t data)");

/** The kernel's struct user_regs_struct for x86-64: 27 unsigned longs, in this order. */
export const REG_NAMES = [
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
  "orig_rax",
  "rip",
  "cs",
  "eflags",
  "rsp",
  "ss",
  "fs_base",
  "gs_base",
  "ds",
  "es",
  "fs",
  "gs",
] as const;
export type RegName = (typeof REG_NAMES)[number];

/** Index of each register in user_regs_struct (also its PEEKUSER offset divided by 8). */
export const Reg = Object.fromEntries(REG_NAMES.map((n, i) => [n, i])) as { readonly [K in RegName]: number };

/** The same layout as a koffi struct, so its size and offsets are checked against C's. */
export const UserRegsStruct = koffi.struct(
  "user_regs_struct",
  Object.fromEntries(REG_NAMES.map((n) => [n, "unsigned long"])),
);
export const USER_REGS_SIZE = 27 * 8;
if (koffi.sizeof(UserRegsStruct) !== USER_REGS_SIZE) throw new Error("user_regs_struct layout mismatch");

/**
 * One register file. GETREGS writes straight into `buf`; values are read and written as
 * unsigned 64-bit bigints through `u64[Reg.x]`.
 */
export class UserRegs {
  readonly buf = Buffer.alloc(USER_REGS_SIZE);
  readonly u64 = new BigUint64Array(this.buf.buffer, this.buf.byteOffset, 27);
  /** The buffer's address: passing it as an integer skips koffi's per-call buffer handling. */
  readonly address = Number(koffi.address(this.buf));

  get(r: RegName): bigint {
    return this.u64[Reg[r]]!;
  }
  set(r: RegName, v: bigint | number): void {
    this.u64[Reg[r]] = BigInt.asUintN(64, BigInt(v));
  }
  copyFrom(o: UserRegs): void {
    this.buf.set(o.buf);
  }
  clone(): UserRegs {
    const c = new UserRegs();
    c.copyFrom(this);
    return c;
  }
}

function req(name: string, pid: number, r: number | bigint): number {
  return check(`ptrace(${name})`, r, String(pid));
}

export function setOptions(pid: number, options: number): void {
  req("SETOPTIONS", pid, ptraceWord(PTRACE_SETOPTIONS, pid, 0, options));
}

/** Attach without stopping the tracee (the stub stops itself). */
export function seize(pid: number, options: number): void {
  req("SEIZE", pid, ptraceWord(PTRACE_SEIZE, pid, 0, options));
}

export function getRegs(pid: number, into: UserRegs): void {
  req("GETREGS", pid, ptraceWord(PTRACE_GETREGS, pid, 0, into.address));
}

export function setRegs(pid: number, from: UserRegs): void {
  req("SETREGS", pid, ptraceWord(PTRACE_SETREGS, pid, 0, from.address));
}

/** Write one register (cheaper than SETREGS when only the return value changes). */
export function pokeReg(pid: number, r: RegName, value: bigint): void {
  req(
    "POKEUSER",
    pid,
    ptraceWord(PTRACE_POKEUSER, pid, Reg[r] * 8, BigInt.asUintN(64, value) as unknown as number),
  );
}

/** Resume until the next system call entry, which the host kernel then skips. */
export function sysemu(pid: number, sig = 0): void {
  req("SYSEMU", pid, ptraceWord(PTRACE_SYSEMU, pid, 0, sig));
}

export function cont(pid: number, sig = 0): void {
  req("CONT", pid, ptraceWord(PTRACE_CONT, pid, 0, sig));
}

export function interrupt(pid: number): void {
  req("INTERRUPT", pid, ptraceWord(PTRACE_INTERRUPT, pid, 0, 0));
}

/** PTRACE_KILL is unreliable on a running tracee; SIGKILL is what ends it for sure. */
export function killTracee(pid: number): boolean {
  return ptraceWord(PTRACE_KILL, pid, 0, 0) === 0;
}

/** The new thread's id after a PTRACE_EVENT_CLONE stop (and other events' messages). */
export function getEventMsg(pid: number): number {
  const b = Buffer.alloc(8);
  req("GETEVENTMSG", pid, ptraceWord(PTRACE_GETEVENTMSG, pid, 0, Number(koffi.address(b))));
  return Number(b.readBigUInt64LE(0));
}

/** What the host says about the signal a tracee stopped with (the head of siginfo_t). */
export interface SigInfo {
  signo: number;
  errno: number;
  code: number;
  /** si_addr for faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP); si_pid's word otherwise. */
  addr: bigint;
  /** The raw 128 bytes, for the kernel to copy into a signal frame. */
  raw: Buffer;
}

export const SIGINFO_SIZE = 128;

export function getSigInfo(pid: number): SigInfo {
  const raw = Buffer.alloc(SIGINFO_SIZE);
  req("GETSIGINFO", pid, ptraceWord(PTRACE_GETSIGINFO, pid, 0, Number(koffi.address(raw))));
  return {
    signo: raw.readInt32LE(0),
    errno: raw.readInt32LE(4),
    code: raw.readInt32LE(8),
    addr: raw.readBigUInt64LE(16),
    raw,
  };
}

/**
 * GETREGSET of `type` into `into`; returns how many bytes the host filled (it shrinks the
 * iovec to the size of the set, e.g. the CPU's XSAVE area size for NT_X86_XSTATE).
 */
export function getRegSet(pid: number, type: number, into: Buffer): number {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(BigInt(koffi.address(into)), 0);
  iov.writeBigUInt64LE(BigInt(into.length), 8);
  req("GETREGSET", pid, ptraceWord(PTRACE_GETREGSET, pid, type, Number(koffi.address(iov))));
  return Number(iov.readBigUInt64LE(8));
}

export function setRegSet(pid: number, type: number, from: Buffer): void {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(BigInt(koffi.address(from)), 0);
  iov.writeBigUInt64LE(BigInt(from.length), 8);
  req("SETREGSET", pid, ptraceWord(PTRACE_SETREGSET, pid, type, Number(koffi.address(iov))));
}
