// Where things go in a fresh address space: the host's own layout rules, randomised the way
// Linux randomises them (stack top, mmap base, PIE load address, program break), or fixed
// at the host's no-ASLR addresses when reproducibility matters more (debugging).
import { randomInt } from "node:crypto";
import { TASK_SIZE } from "./addrspace.js";

const PAGE = 4096;
/** The initial stack is mapped at its full RLIMIT_STACK size; pages cost memory only once used. */
export const STACK_SIZE = 8 * 1024 * 1024;
/** Linux keeps at least 128 MiB between the stack and the mmap area. */
const STACK_GAP = 128 * 1024 * 1024;
/** Load address of position-independent executables without randomisation (ELF_ET_DYN_BASE). */
const ET_DYN_BASE = 0x5555_5555_4000;

export interface Layout {
  /** Top of the initial stack (exclusive). */
  stackTop: number;
  /** mmap without a hint searches downward from here. */
  mmapBase: number;
  /** Where a position-independent executable's lowest segment goes. */
  pieBase: number;
  /** Added to the end of the image to start the program break. */
  brkOffset: number;
}

/** Linux x86-64 with randomize_va_space=0. */
export function fixedLayout(): Layout {
  return {
    stackTop: TASK_SIZE,
    mmapBase: TASK_SIZE - STACK_GAP - STACK_SIZE,
    pieBase: ET_DYN_BASE,
    brkOffset: 0,
  };
}

function randomPages(bits: number): number {
  // randomInt takes at most 2^48 - 1 as its range: split in two draws.
  const hi = bits > 24 ? randomInt(2 ** (bits - 24)) * 2 ** 24 : 0;
  return (hi + randomInt(2 ** Math.min(bits, 24))) * PAGE;
}

/**
 * The host's entropy: 22 bits of pages for the stack, 28 for mmap and PIE, and the break
 * anywhere in the 1 GiB above the program (arch_randomize_brk for 64-bit programs).
 */
export function randomLayout(): Layout {
  const stackTop = TASK_SIZE - randomPages(22);
  return {
    stackTop,
    mmapBase: stackTop - STACK_GAP - STACK_SIZE - randomPages(28),
    pieBase: ET_DYN_BASE + randomPages(28),
    brkOffset: randomInt(0x4000_0000 / PAGE) * PAGE,
  };
}
