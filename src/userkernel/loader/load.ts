// Loading a static executable into a fresh address space: PT_LOAD segments are copied into
// memory-file pages (no host file is ever mapped into the application), the bss is zeroed,
// the stack is mapped and filled, and the program break starts right after the image.
import { fail } from "../errno.js";
import {
  type AddressSpace,
  MAP_FIXED,
  MAP_PRIVATE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from "../mm/addrspace.js";
import { type Layout, STACK_SIZE } from "../mm/layout.js";
import { pageDown, pageUp } from "../mm/memfile.js";
import { type ElfImage, ET_DYN, PF_R, PF_W, PF_X, PT_LOAD, PT_PHDR, parseElf } from "./elf.js";
import { buildInitialStack, type StackInfo } from "./stack.js";

export interface LoadRequest extends Omit<StackInfo, "phdr" | "phnum" | "entry"> {
  image: Buffer;
  layout: Layout;
}

export interface Loaded {
  elf: ElfImage;
  /** Difference between link-time and run-time addresses (0 for ET_EXEC). */
  bias: number;
  entry: number;
  sp: number;
  brk: number;
  /** Run-time address of the TLS initialisation image, if the binary has PT_TLS. */
  tlsImage?: number;
}

function protOf(flags: number): number {
  return (flags & PF_R ? PROT_READ : 0) | (flags & PF_W ? PROT_WRITE : 0) | (flags & PF_X ? PROT_EXEC : 0);
}

export function loadStatic(mm: AddressSpace, req: LoadRequest): Loaded {
  const elf = parseElf(req.image);
  if (elf.interp !== undefined)
    fail("ENOEXEC", `dynamically linked (interpreter ${elf.interp}); only static binaries are supported yet`);
  const loads = elf.phdrs.filter((p) => p.type === PT_LOAD && p.memsz > 0).sort((a, b) => a.vaddr - b.vaddr);
  const lowest = pageDown(loads[0]!.vaddr);
  const { stackTop, pieBase, brkOffset } = req.layout;
  const bias = elf.type === ET_DYN ? pieBase - lowest : 0;

  let mappedEnd = 0;
  let lastProt = 0;
  let imageEnd = 0;
  for (const ph of loads) {
    const vaddr = ph.vaddr + bias;
    if (!Number.isSafeInteger(vaddr + ph.memsz)) fail("ENOEXEC", "segment address out of range");
    const start = pageDown(vaddr);
    const end = pageUp(vaddr + ph.memsz);
    const prot = protOf(ph.flags);
    let from = start;
    if (start < mappedEnd) {
      // Two segments share a page: the host would give it the later segment's protections
      // over both contents; granting the union keeps both segments usable.
      if (end <= mappedEnd) fail("ENOEXEC", "overlapping segments");
      mm.mprotect(start, mappedEnd - start, lastProt | prot);
      from = mappedEnd;
    }
    mm.mapAnonymous(from, end - from, prot, MAP_PRIVATE | MAP_FIXED);
    mm.write(vaddr, req.image.subarray(ph.offset, ph.offset + ph.filesz), "force");
    // Fresh pages are zero already; only a shared first page may hold the previous segment's bytes.
    const fileEnd = vaddr + ph.filesz;
    const zeroEnd = Math.min(vaddr + ph.memsz, pageUp(fileEnd));
    if (zeroEnd > fileEnd) mm.zero(fileEnd, zeroEnd - fileEnd, "force");
    mappedEnd = end;
    lastProt = prot;
    imageEnd = Math.max(imageEnd, vaddr + ph.memsz);
  }

  const phdrSeg = elf.phdrs.find((p) => p.type === PT_PHDR);
  let phdr: number;
  if (phdrSeg) phdr = phdrSeg.vaddr + bias;
  else {
    const holder = loads.find(
      (p) => p.offset <= elf.phoff && elf.phoff + elf.phnum * 56 <= p.offset + p.filesz,
    );
    // Without the headers in memory AT_PHDR cannot point anywhere; static glibc then
    // falls back to no TLS information and fails, so refuse early.
    if (!holder) fail("ENOEXEC", "program headers are not part of any loaded segment");
    phdr = holder.vaddr + bias + (elf.phoff - holder.offset);
  }

  const stackProt = PROT_READ | PROT_WRITE | (elf.execStack ? PROT_EXEC : 0);
  mm.mapAnonymous(stackTop - STACK_SIZE, STACK_SIZE, stackProt, MAP_PRIVATE | MAP_FIXED, "[stack]");
  const sp = buildInitialStack(mm, stackTop, {
    ...req,
    phdr,
    phnum: elf.phnum,
    entry: elf.entry + bias,
  });

  const brk = pageUp(imageEnd) + brkOffset;
  mm.brkStart = brk;
  mm.brkEnd = brk;
  const loaded: Loaded = { elf, bias, entry: elf.entry + bias, sp, brk };
  if (elf.tls) loaded.tlsImage = elf.tls.vaddr + bias;
  return loaded;
}
