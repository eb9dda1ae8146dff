// Loading an ELF program into a fresh address space, as Linux's load_elf_binary does it:
// PT_LOAD segments are copied into memory-file pages (no host file is ever mapped into the
// application), the bss is zeroed, the stack is mapped and filled, and the program break
// starts right after the program. A program with PT_INTERP gets its interpreter (glibc's
// ld.so, read by the caller from the container's rootfs) loaded too, at a free place of the
// mmap area as Linux puts it, and starts there; ld.so then maps the libraries itself.
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

/** A program's PT_INTERP file, read from where the program's own file system has it. */
export interface Interpreter {
  image: Buffer;
  /** Its path in the container, for /proc/pid/maps. */
  path: string;
}

export interface LoadRequest extends Omit<StackInfo, "phdr" | "phnum" | "entry" | "base"> {
  image: Buffer;
  layout: Layout;
  /** Required when the program has PT_INTERP; ignored otherwise. */
  interp?: Interpreter | undefined;
  /** The program's path, for /proc/pid/maps (execfn if absent). */
  path?: string;
}

export interface Loaded {
  elf: ElfImage;
  /** Difference between link-time and run-time addresses (0 for ET_EXEC). */
  bias: number;
  /** Where execution starts: the interpreter's entry point if there is one, else the program's. */
  entry: number;
  sp: number;
  brk: number;
  /** The interpreter's load address (AT_BASE), if the program has one. */
  interpBase?: number;
  /** Run-time address of the TLS initialisation image, if the binary has PT_TLS. */
  tlsImage?: number;
}

function protOf(flags: number): number {
  return (flags & PF_R ? PROT_READ : 0) | (flags & PF_W ? PROT_WRITE : 0) | (flags & PF_X ? PROT_EXEC : 0);
}

function loadSegments(elf: ElfImage) {
  const loads = elf.phdrs.filter((p) => p.type === PT_LOAD && p.memsz > 0).sort((a, b) => a.vaddr - b.vaddr);
  if (loads.length === 0) fail("ENOEXEC", "no loadable segment");
  const lowest = pageDown(loads[0]!.vaddr);
  const highest = Math.max(...loads.map((p) => p.vaddr + p.memsz));
  if (!Number.isSafeInteger(highest)) fail("ENOEXEC", "segment address out of range");
  return { loads, lowest, span: pageUp(highest) - lowest };
}

/** Map and fill every PT_LOAD segment of `image` at `bias`; returns the end of the image. */
function mapSegments(mm: AddressSpace, elf: ElfImage, image: Buffer, bias: number, name: string): number {
  const { loads } = loadSegments(elf);
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
    mm.mapAnonymous(from, end - from, prot, MAP_PRIVATE | MAP_FIXED, name);
    mm.write(vaddr, image.subarray(ph.offset, ph.offset + ph.filesz), "force");
    // Fresh pages are zero already; only a shared first page may hold the previous segment's bytes.
    const fileEnd = vaddr + ph.filesz;
    const zeroEnd = Math.min(vaddr + ph.memsz, pageUp(fileEnd));
    if (zeroEnd > fileEnd) mm.zero(fileEnd, zeroEnd - fileEnd, "force");
    mappedEnd = end;
    lastProt = prot;
    imageEnd = Math.max(imageEnd, vaddr + ph.memsz);
  }
  return imageEnd;
}

/**
 * The interpreter goes where an mmap without a hint of its whole extent would go (Linux
 * loads it with such an mmap and then places the segments inside it), so it lands at the
 * randomised top of the mmap area, below the stack.
 */
function loadInterpreter(mm: AddressSpace, interp: Interpreter): { bias: number; entry: number } {
  const elf = parseElf(interp.image);
  const { lowest, span } = loadSegments(elf);
  let bias = 0;
  if (elf.type === ET_DYN) {
    const base = mm.mapAnonymous(0, span, 0, MAP_PRIVATE);
    mm.munmap(base, span);
    bias = base - lowest;
  }
  mapSegments(mm, elf, interp.image, bias, interp.path);
  return { bias, entry: elf.entry + bias };
}

export function loadElf(mm: AddressSpace, req: LoadRequest): Loaded {
  const elf = parseElf(req.image);
  if (elf.interp !== undefined && req.interp === undefined)
    fail("ENOEXEC", `dynamically linked (interpreter ${elf.interp}), and its interpreter was not given`);
  const { lowest } = loadSegments(elf);
  const { stackTop, pieBase, brkOffset } = req.layout;
  const bias = elf.type === ET_DYN ? pieBase - lowest : 0;
  const imageEnd = mapSegments(mm, elf, req.image, bias, req.path ?? req.execfn);

  const phdrSeg = elf.phdrs.find((p) => p.type === PT_PHDR);
  let phdr: number;
  if (phdrSeg) phdr = phdrSeg.vaddr + bias;
  else {
    const holder = elf.phdrs.find(
      (p) => p.type === PT_LOAD && p.offset <= elf.phoff && elf.phoff + elf.phnum * 56 <= p.offset + p.filesz,
    );
    // Without the headers in memory AT_PHDR cannot point anywhere; static glibc then
    // falls back to no TLS information and fails, so refuse early.
    if (!holder) fail("ENOEXEC", "program headers are not part of any loaded segment");
    phdr = holder.vaddr + bias + (elf.phoff - holder.offset);
  }

  // Linux sets the break right after the program, before the interpreter is placed.
  const brk = pageUp(imageEnd) + brkOffset;
  mm.brkStart = brk;
  mm.brkEnd = brk;

  const stackProt = PROT_READ | PROT_WRITE | (elf.execStack ? PROT_EXEC : 0);
  mm.mapAnonymous(stackTop - STACK_SIZE, STACK_SIZE, stackProt, MAP_PRIVATE | MAP_FIXED, "[stack]");
  const interp = elf.interp !== undefined && req.interp ? loadInterpreter(mm, req.interp) : undefined;
  const sp = buildInitialStack(mm, stackTop, {
    ...req,
    phdr,
    phnum: elf.phnum,
    entry: elf.entry + bias,
    base: interp?.bias ?? 0,
  });

  const loaded: Loaded = { elf, bias, entry: interp?.entry ?? elf.entry + bias, sp, brk };
  if (interp) loaded.interpBase = interp.bias;
  if (elf.tls) loaded.tlsImage = elf.tls.vaddr + bias;
  return loaded;
}

/** The name kernel.ts still calls it by (it loads dynamic programs too now). */
export const loadStatic = loadElf;
