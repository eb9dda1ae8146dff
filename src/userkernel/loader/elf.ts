// ELF64 header and program-header parsing for x86-64 executables. The binary comes from a
// container image, so every field is checked before it is used.
import { fail } from "../errno.js";

export const ET_EXEC = 2;
export const ET_DYN = 3;
export const PT_LOAD = 1;
export const PT_INTERP = 3;
export const PT_PHDR = 6;
export const PT_TLS = 7;
export const PT_GNU_STACK = 0x6474e551;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

const EM_X86_64 = 62;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
/** The host refuses program-header tables above 64 KiB; so do we. */
const MAX_PHDR_BYTES = 65536;

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface ElfImage {
  type: typeof ET_EXEC | typeof ET_DYN;
  entry: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  phdrs: ProgramHeader[];
  interp?: string;
  tls?: ProgramHeader;
  /** PT_GNU_STACK asked for an executable stack. */
  execStack: boolean;
}

function u64(b: Buffer, at: number): number {
  const v = b.readBigUInt64LE(at);
  // User addresses and sizes fit in 47 bits; anything larger cannot be loaded anyway.
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail("EINVAL", "ELF field out of range");
  return Number(v);
}

export function parseElf(b: Buffer): ElfImage {
  if (b.length < EHDR_SIZE || b.readUInt32BE(0) !== 0x7f454c46) fail("ENOEXEC", "not an ELF file");
  if (b[4] !== 2) fail("ENOEXEC", "not a 64-bit ELF file");
  if (b[5] !== 1) fail("ENOEXEC", "not a little-endian ELF file");
  if (b[6] !== 1) fail("ENOEXEC", "unknown ELF version");
  const type = b.readUInt16LE(16);
  if (type !== ET_EXEC && type !== ET_DYN)
    fail("ENOEXEC", "neither an executable nor a position-independent one");
  if (b.readUInt16LE(18) !== EM_X86_64) fail("ENOEXEC", "not an x86-64 binary");
  const entry = u64(b, 24);
  const phoff = u64(b, 32);
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  if (phentsize !== PHDR_SIZE) fail("ENOEXEC", "unexpected program header size");
  if (phnum === 0 || phnum * PHDR_SIZE > MAX_PHDR_BYTES) fail("ENOEXEC", "bad program header count");
  if (phoff + phnum * PHDR_SIZE > b.length) fail("ENOEXEC", "program headers beyond the end of the file");

  const img: ElfImage = {
    type: type as ElfImage["type"],
    entry,
    phoff,
    phentsize,
    phnum,
    phdrs: [],
    execStack: false,
  };
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * PHDR_SIZE;
    const ph: ProgramHeader = {
      type: b.readUInt32LE(at),
      flags: b.readUInt32LE(at + 4),
      offset: u64(b, at + 8),
      vaddr: u64(b, at + 16),
      filesz: u64(b, at + 32),
      memsz: u64(b, at + 40),
      align: u64(b, at + 48),
    };
    img.phdrs.push(ph);
    if (ph.type === PT_LOAD) {
      if (ph.filesz > ph.memsz) fail("ENOEXEC", "segment file size exceeds its memory size");
      if (ph.offset + ph.filesz > b.length) fail("ENOEXEC", "segment beyond the end of the file");
      if (ph.offset % 4096 !== ph.vaddr % 4096)
        fail("ENOEXEC", "segment offset and address disagree modulo the page");
    } else if (ph.type === PT_INTERP) {
      if (ph.filesz < 2 || ph.filesz > 4096 || ph.offset + ph.filesz > b.length)
        fail("ENOEXEC", "bad PT_INTERP");
      img.interp = b.toString("latin1", ph.offset, ph.offset + ph.filesz - 1);
    } else if (ph.type === PT_TLS) img.tls = ph;
    else if (ph.type === PT_GNU_STACK) img.execStack = (ph.flags & PF_X) !== 0;
  }
  if (!img.phdrs.some((p) => p.type === PT_LOAD)) fail("ENOEXEC", "no loadable segment");
  return img;
}
