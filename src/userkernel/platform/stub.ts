// The stub: the host process that becomes an application's address space. moat generates it
// as bytes (no toolchain, nothing on disk to tamper with): a static ELF64 whose whole code
// arms a parent-death signal, asks to be traced, stops itself, and then offers the
// `syscall; int3` gadget through which the kernel runs mmap/munmap/mprotect inside it.

/** Where the stub is linked: far above ELF_ET_DYN_BASE and below the host's randomised stack. */
export const STUB_BASE = 0x7ff8_0000_0000;
/** The stub occupies this one page; the application must never be given it. */
export const STUB_SIZE = 0x1000;

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const PHNUM = 2;
const CODE_OFFSET = EHDR_SIZE + PHDR_SIZE * PHNUM;

const PARENT_PID_AT = 25;
const GADGET_OFFSET = 68;

// biome-ignore format: hand-assembled machine code, one instruction per line
const CODE = [
  // prctl(PR_SET_PDEATHSIG, SIGKILL): the stub dies with the thread that spawned it, which
  // covers the moments before the kernel has set PTRACE_O_EXITKILL.
  0xb8, 0x9d, 0x00, 0x00, 0x00, //  0: mov eax, 157        (__NR_prctl)
  0xbf, 0x01, 0x00, 0x00, 0x00, //  5: mov edi, 1          (PR_SET_PDEATHSIG)
  0xbe, 0x09, 0x00, 0x00, 0x00, // 10: mov esi, 9          (SIGKILL)
  0x0f, 0x05,                   // 15: syscall
  // If the parent died before prctl took effect, nobody will ever trace us: leave.
  0xb8, 0x6e, 0x00, 0x00, 0x00, // 17: mov eax, 110        (__NR_getppid)
  0x0f, 0x05,                   // 22: syscall
  0x3d, 0x00, 0x00, 0x00, 0x00, // 24: cmp eax, imm32      (the kernel's pid, patched in at 25)
  0x75, 0x2a,                   // 29: jne +42             (to 73: exit)
  // ptrace(PTRACE_TRACEME, 0, 0, 0): the spawning process becomes the tracer.
  0xb8, 0x65, 0x00, 0x00, 0x00, // 31: mov eax, 101        (__NR_ptrace)
  0x31, 0xff,                   // 36: xor edi, edi        (PTRACE_TRACEME)
  0x31, 0xf6,                   // 38: xor esi, esi        (pid, ignored)
  0x31, 0xd2,                   // 40: xor edx, edx        (addr, ignored)
  0x4d, 0x31, 0xd2,             // 42: xor r10, r10        (data, ignored)
  0x0f, 0x05,                   // 45: syscall
  // kill(getpid(), SIGSTOP): wait, stopped, until the tracer takes over.
  0xb8, 0x27, 0x00, 0x00, 0x00, // 47: mov eax, 39         (__NR_getpid)
  0x0f, 0x05,                   // 52: syscall
  0x89, 0xc7,                   // 54: mov edi, eax        (our pid)
  0xb8, 0x3e, 0x00, 0x00, 0x00, // 56: mov eax, 62         (__NR_kill)
  0xbe, 0x13, 0x00, 0x00, 0x00, // 61: mov esi, 19         (SIGSTOP)
  0x0f, 0x05,                   // 66: syscall
  // The gadget. The kernel points rip here with the syscall's registers set, continues
  // the stub, and reads rax back when the int3 reports SIGTRAP.
  0x0f, 0x05,                   // 68: syscall
  0xcc,                         // 70: int3
  // Never reached unless someone resumes the stub past the trap: die on an invalid opcode.
  0x0f, 0x0b,                   // 71: ud2
  // exit_group(127)
  0xb8, 0xe7, 0x00, 0x00, 0x00, // 73: mov eax, 231        (__NR_exit_group)
  0xbf, 0x7f, 0x00, 0x00, 0x00, // 78: mov edi, 127
  0x0f, 0x05,                   // 83: syscall
];

export const STUB_ENTRY = STUB_BASE + CODE_OFFSET;
/** Address of the `syscall; int3` pair. */
export const STUB_GADGET = STUB_BASE + CODE_OFFSET + GADGET_OFFSET;
/** Where rip is after the gadget's int3 (what a finished injected syscall reports). */
export const STUB_GADGET_TRAP_RIP = STUB_GADGET + 3;

const PT_LOAD = 1;
const PT_GNU_STACK = 0x6474e551;
const PF_X = 1;
const PF_W = 2;
const PF_R = 4;

/** The stub as a complete ELF64 executable image, for a kernel process whose pid is `parentPid`. */
export function stubElf(parentPid: number): Buffer {
  const size = CODE_OFFSET + CODE.length;
  const b = Buffer.alloc(size);
  // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_SYSV.
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0);
  b.writeUInt16LE(2, 16); // e_type = ET_EXEC: fixed address, so the layout is known
  b.writeUInt16LE(62, 18); // e_machine = EM_X86_64
  b.writeUInt32LE(1, 20); // e_version
  b.writeBigUInt64LE(BigInt(STUB_ENTRY), 24); // e_entry
  b.writeBigUInt64LE(BigInt(EHDR_SIZE), 32); // e_phoff
  b.writeBigUInt64LE(0n, 40); // e_shoff: no sections
  b.writeUInt32LE(0, 48); // e_flags
  b.writeUInt16LE(EHDR_SIZE, 52); // e_ehsize
  b.writeUInt16LE(PHDR_SIZE, 54); // e_phentsize
  b.writeUInt16LE(PHNUM, 56); // e_phnum
  b.writeUInt16LE(0, 58); // e_shentsize
  b.writeUInt16LE(0, 60); // e_shnum
  b.writeUInt16LE(0, 62); // e_shstrndx

  // One read+execute segment holding the whole file, headers included.
  let p = EHDR_SIZE;
  b.writeUInt32LE(PT_LOAD, p);
  b.writeUInt32LE(PF_R | PF_X, p + 4);
  b.writeBigUInt64LE(0n, p + 8); // p_offset
  b.writeBigUInt64LE(BigInt(STUB_BASE), p + 16); // p_vaddr
  b.writeBigUInt64LE(BigInt(STUB_BASE), p + 24); // p_paddr
  b.writeBigUInt64LE(BigInt(size), p + 32); // p_filesz
  b.writeBigUInt64LE(BigInt(size), p + 40); // p_memsz
  b.writeBigUInt64LE(0x1000n, p + 48); // p_align

  // A non-executable stack, so the host never grants READ_IMPLIES_EXEC.
  p += PHDR_SIZE;
  b.writeUInt32LE(PT_GNU_STACK, p);
  b.writeUInt32LE(PF_R | PF_W, p + 4);
  b.writeBigUInt64LE(16n, p + 48);

  b.set(CODE, CODE_OFFSET);
  b.writeUInt32LE(parentPid, CODE_OFFSET + PARENT_PID_AT);
  return b;
}
