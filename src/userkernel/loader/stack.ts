// The initial process stack, laid out exactly as Linux's create_elf_tables does it:
//
//   high  8 zero bytes (end marker)
//         execfn string
//         envp strings, argv strings (argv[0] lowest)
//         (16-byte alignment)
//         "x86_64" (AT_PLATFORM)
//         16 random bytes (AT_RANDOM)
//         (padding so that sp is 16-byte aligned)
//         auxv pairs ... AT_NULL, 0
//         NULL, envp[envc-1] ... envp[0]
//         NULL, argv[argc-1] ... argv[0]
//   low   argc                                   <- sp
import { randomFillSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { fail } from "../errno.js";
import type { AddressSpace } from "../mm/addrspace.js";

export const AT_NULL = 0;
export const AT_PHDR = 3;
export const AT_PHENT = 4;
export const AT_PHNUM = 5;
export const AT_PAGESZ = 6;
export const AT_BASE = 7;
export const AT_FLAGS = 8;
export const AT_ENTRY = 9;
export const AT_UID = 11;
export const AT_EUID = 12;
export const AT_GID = 13;
export const AT_EGID = 14;
export const AT_PLATFORM = 15;
export const AT_HWCAP = 16;
export const AT_CLKTCK = 17;
export const AT_SECURE = 23;
export const AT_RANDOM = 25;
export const AT_HWCAP2 = 26;
export const AT_EXECFN = 31;
export const AT_MINSIGSTKSZ = 51;

/** Total argument and environment bytes the host accepts with an 8 MiB stack (a quarter of it). */
const MAX_ARG_BYTES = 2 * 1024 * 1024;

export interface StackInfo {
  argv: string[];
  env: string[];
  execfn: string;
  phdr: number;
  phnum: number;
  entry: number;
  /** The interpreter's load address (AT_BASE); 0 without one. */
  base?: number;
  uid: number;
  euid: number;
  gid: number;
  egid: number;
  /** 16 bytes for AT_RANDOM; random if not given. */
  random?: Uint8Array;
}

let hostCaps: Map<number, bigint> | undefined;

/** The CPU features the host kernel reports: the application runs on the same CPU. */
function hostAuxv(): Map<number, bigint> {
  if (!hostCaps) {
    hostCaps = new Map();
    try {
      const b = readFileSync("/proc/self/auxv");
      for (let i = 0; i + 16 <= b.length; i += 16)
        hostCaps.set(Number(b.readBigUInt64LE(i)), b.readBigUInt64LE(i + 8));
    } catch {
      // No /proc: fall back to no advertised features (programs then use generic code).
    }
  }
  return hostCaps;
}

/**
 * Write the initial stack below `top` (the highest stack address + 1) and return the
 * stack pointer the program starts with.
 */
export function buildInitialStack(mm: AddressSpace, top: number, info: StackInfo): number {
  // Byte strings (latin1: one char per byte), as the kernel keeps every string of a program.
  const argv = info.argv.map((s) => Buffer.from(`${s}\0`, "latin1"));
  const env = info.env.map((s) => Buffer.from(`${s}\0`, "latin1"));
  const execfn = Buffer.from(`${info.execfn}\0`, "latin1");
  const stringBytes = [...argv, ...env].reduce((n, b) => n + b.length, 0) + execfn.length;
  if (stringBytes > MAX_ARG_BYTES) fail("E2BIG", "arguments and environment exceed 2 MiB");

  let p = top - 8;
  mm.zero(p, 8, "force");
  p -= execfn.length;
  const execfnAddr = p;
  mm.write(p, execfn, "force");
  const envAddrs: number[] = [];
  const argvAddrs: number[] = [];
  p -= env.reduce((n, b) => n + b.length, 0) + argv.reduce((n, b) => n + b.length, 0);
  let at = p;
  for (const b of argv) {
    argvAddrs.push(at);
    mm.write(at, b, "force");
    at += b.length;
  }
  for (const b of env) {
    envAddrs.push(at);
    mm.write(at, b, "force");
    at += b.length;
  }

  p -= p % 16;
  const platform = Buffer.from("x86_64\0");
  p -= platform.length;
  const platformAddr = p;
  mm.write(p, platform, "force");
  const random = info.random ?? randomFillSync(new Uint8Array(16));
  p -= 16;
  const randomAddr = p;
  mm.write(p, random.subarray(0, 16), "force");

  const caps = hostAuxv();
  const auxv: Array<[number, number | bigint]> = [];
  const minsig = caps.get(AT_MINSIGSTKSZ);
  if (minsig !== undefined) auxv.push([AT_MINSIGSTKSZ, minsig]);
  auxv.push(
    [AT_HWCAP, caps.get(AT_HWCAP) ?? 0n],
    [AT_PAGESZ, 4096],
    [AT_CLKTCK, 100],
    [AT_PHDR, info.phdr],
    [AT_PHENT, 56],
    [AT_PHNUM, info.phnum],
    [AT_BASE, info.base ?? 0],
    [AT_FLAGS, 0],
    [AT_ENTRY, info.entry],
    [AT_UID, info.uid],
    [AT_EUID, info.euid],
    [AT_GID, info.gid],
    [AT_EGID, info.egid],
    [AT_SECURE, 0],
    [AT_RANDOM, randomAddr],
    [AT_HWCAP2, caps.get(AT_HWCAP2) ?? 0n],
    [AT_EXECFN, execfnAddr],
    [AT_PLATFORM, platformAddr],
    [AT_NULL, 0],
  );

  const words: Array<number | bigint> = [argv.length, ...argvAddrs, 0, ...envAddrs, 0];
  for (const [k, v] of auxv) words.push(k, v);
  const low = p - words.length * 8;
  // Plain arithmetic: JavaScript's bitwise operators would cut addresses to 32 bits.
  const sp = low - (low % 16);
  const block = Buffer.alloc(words.length * 8);
  words.forEach((w, i) => {
    block.writeBigUInt64LE(BigInt(w), i * 8);
  });
  mm.write(sp, block, "force");
  return sp;
}
