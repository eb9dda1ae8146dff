// Serving one system call: look the number up in the table, run the handler, turn failures
// into -errno, and apply what it returned: a value goes into rax, a Control value ends the
// thread or the process, restarts the call, or leaves the registers as the handler set them.

import { MoatError } from "../../spec/errors.js";
import { Errno, errnoName } from "../../sys/errno.js";
import { Reg } from "../../sys/ptrace.js";
import { KernelError } from "../errno.js";
import { syscallName } from "../syscalls/names.js";
import { SYSCALLS } from "../syscalls/table.js";
import type { Args, Control, Result, SyscallEntry } from "../syscalls/types.js";
import { killGroup } from "./signals.js";
import { noteSyscallEnd } from "./syscall-restart.js";
import type { Task } from "./task.js";

const ARG_REGS = [Reg.rdi, Reg.rsi, Reg.rdx, Reg.r10, Reg.r8, Reg.r9];
const ORIG_RAX = Reg.orig_rax;

function noteUnimplemented(t: Task, name: string): void {
  const n = t.kernel.unimplemented.get(name) ?? 0;
  t.kernel.unimplemented.set(name, n + 1);
  if (n === 0 && t.kernel.debug)
    t.kernel.log(`moat userkernel: unimplemented syscall ${name} (returns ENOSYS)`);
}

const EINTR = BigInt(-Errno.EINTR);
const SYSCALL_INSN = 0x050f; // 0f 05, read little-endian

/** Did the stop come from a `syscall` instruction (as opposed to int 0x80 or sysenter)? */
function viaSyscallInstruction(t: Task): boolean {
  const rip = Number(t.cpu.regs.u64[Reg.rip]!);
  return t.mm.peekU16(rip - 2) === SYSCALL_INSN;
}

/**
 * Serves the syscall the task stopped at. Returns a promise only when the handler waits (stdin,
 * sleep): the common synchronous case allocates no promise, which a tight syscall loop feels.
 */
export function dispatch(t: Task): Promise<void> | undefined {
  const u64 = t.cpu.regs.u64;
  const nrRaw = u64[ORIG_RAX]!;
  // Out-of-range numbers (including -1) must not alias a real entry.
  const nr = nrRaw > 0xffffn ? -1 : Number(nrRaw);
  const args: Args = [
    u64[ARG_REGS[0]!]!,
    u64[ARG_REGS[1]!]!,
    u64[ARG_REGS[2]!]!,
    u64[ARG_REGS[3]!]!,
    u64[ARG_REGS[4]!]!,
    u64[ARG_REGS[5]!]!,
  ];
  const x64 = viaSyscallInstruction(t);
  const entry = x64 ? SYSCALLS.get(nr) : undefined;
  if (!x64) {
    // int 0x80 from 64-bit code uses the i386 numbers and registers; serving it with the
    // x86-64 table would do the wrong call, so it is refused as a whole.
    noteUnimplemented(t, "int 0x80 (i386 syscall ABI)");
  } else if (!entry) noteUnimplemented(t, nameOf(nr, nrRaw));
  if (!entry) {
    finish(t, nr, nrRaw, entry, args, BigInt(-Errno.ENOSYS));
    return undefined;
  }
  let ret: bigint | Control;
  try {
    const r = entry.handler(t, args);
    if (r instanceof Promise)
      return r.then(
        (v) => finish(t, nr, nrRaw, entry, args, asResult(v)),
        (e: unknown) => finish(t, nr, nrRaw, entry, args, failure(t, entry, e)),
      );
    ret = asResult(r);
  } catch (e) {
    ret = failure(t, entry, e);
  }
  finish(t, nr, nrRaw, entry, args, ret);
  return undefined;
}

function asResult(r: Result): bigint | Control {
  return typeof r === "object" ? r : BigInt(r);
}

function nameOf(nr: number, nrRaw: bigint): string {
  return nr === -1 ? `syscall_${BigInt.asIntN(64, nrRaw)}` : syscallName(nr);
}

/** A handler's KernelError as -errno; anything else is a moat bug and ends the run. */
function failure(t: Task, entry: SyscallEntry, e: unknown): bigint {
  if (!(e instanceof KernelError)) {
    if (e instanceof MoatError) throw e;
    throw new MoatError(
      "EIO",
      `the userkernel failed while serving ${entry.name} (${(e as Error).message}): this is a moat bug; rerun with debug on to get the syscall trace and report it`,
      { cause: e },
    );
  }
  // A partial handler that meets a case it does not serve counts as unimplemented too.
  if (e.code === "ENOSYS" && entry.support !== "error") noteUnimplemented(t, `${entry.name} (${e.message})`);
  return BigInt(-e.errno);
}

function finish(
  t: Task,
  nr: number,
  nrRaw: bigint,
  entry: SyscallEntry | undefined,
  args: Args,
  ret: bigint | Control,
): void {
  if (t.kernel.debug) {
    const name = entry?.name ?? nameOf(nr, nrRaw);
    const shown =
      typeof ret === "object"
        ? `(${ret.kind})`
        : ret < 0n && ret > -4096n
          ? `-${errnoName(Number(-ret))}`
          : `0x${ret.toString(16)}`;
    t.kernel.log(`[${t.tid}] ${name}(${args.map((a) => `0x${a.toString(16)}`).join(", ")}) = ${shown}`);
  }
  if (t.exitStatus) return;
  if (typeof ret !== "object") {
    t.cpu.setReturn(ret);
    // An EINTR may restart once the delivery stage knows whether a handler runs.
    if (ret === EINTR || t.restartKind !== undefined) noteSyscallEnd(t, nr, ret);
    // A restart block lives only as long as the EINTR it came with.
    if (ret !== EINTR) t.restartBlock = undefined;
    return;
  }
  t.restartKind = undefined;
  t.restartBlock = undefined;
  apply(t, ret);
}

const SYSCALL_INSN_LEN = 2n;

function apply(t: Task, c: Control): void {
  switch (c.kind) {
    case "exit":
      if (c.group) killGroup(t.group, c.status);
      else t.exit(c.status);
      return;
    case "restart": {
      // Back to the syscall instruction with its number in rax: the call runs again once the
      // task returns to application code.
      const r = t.cpu.regs;
      r.set("rip", r.get("rip") - SYSCALL_INSN_LEN);
      r.set("rax", r.get("orig_rax"));
      t.cpu.regsChanged();
      return;
    }
    case "noreturn":
      return;
  }
}
