// An OCI seccomp profile (linux.seccomp in config.json) compiled to a classic BPF program
// for seccomp(2)/prctl(PR_SET_SECCOMP), as libseccomp does for runc. A sandbox's kernel
// applies it to the container's processes: the vm guest's moat-creds loads the program
// just before exec. x86-64 only: a call made through another ABI (i386 int 0x80, x32) gets
// the default action, so a profile cannot be sidestepped by switching ABI.
import { MoatError } from "../spec/errors.js";
import { SYSCALL_NUMBERS } from "../spec/syscalls.js";

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}
export interface SeccompRule {
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[];
}
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  syscalls?: SeccompRule[];
}

// seccomp return values (include/uapi/linux/seccomp.h).
const RET = {
  SCMP_ACT_KILL: 0x0000_0000, // kill the thread
  SCMP_ACT_KILL_THREAD: 0x0000_0000,
  SCMP_ACT_KILL_PROCESS: 0x8000_0000,
  SCMP_ACT_TRAP: 0x0003_0000,
  SCMP_ACT_ERRNO: 0x0005_0000,
  SCMP_ACT_TRACE: 0x7ff0_0000,
  SCMP_ACT_LOG: 0x7ffc_0000,
  SCMP_ACT_ALLOW: 0x7fff_0000,
} as const;
const EPERM = 1;

// struct seccomp_data: nr at 0, arch at 4, instruction_pointer at 8, args[6] at 16.
const OFF_NR = 0;
const OFF_ARCH = 4;
const argLow = (i: number) => 16 + 8 * i;
const argHigh = (i: number) => 16 + 8 * i + 4;
const AUDIT_ARCH_X86_64 = 0xc000_003e;
const X32_SYSCALL_BIT = 0x4000_0000;

// Classic BPF opcodes.
const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGT_K = 0x25;
const BPF_JMP_JGE_K = 0x35;
const BPF_ALU_AND_K = 0x54;
const BPF_RET_K = 0x06;

/** A jump target: a relative offset, or a label resolved when the program is laid out. */
type Target = number | string;
interface Insn {
  code: number;
  jt: Target;
  jf: Target;
  k: number;
  /** Labels that name this instruction's position. */
  labels?: string[];
}
const stmt = (code: number, k: number): Insn => ({ code, jt: 0, jf: 0, k: k >>> 0 });
const jump = (code: number, k: number, jt: Target, jf: Target): Insn => ({ code, jt, jf, k: k >>> 0 });

function action(name: string, errnoRet: number | undefined, where: string): number {
  const base = RET[name as keyof typeof RET];
  if (base === undefined) {
    throw new MoatError(
      "EINVAL",
      `seccomp ${where}: unknown action "${name}" (use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, ...)`,
    );
  }
  if (name === "SCMP_ACT_ERRNO" || name === "SCMP_ACT_TRACE")
    return (base | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
  return base;
}

const hi = (v: number) => Math.floor(v / 2 ** 32) >>> 0;
const lo = (v: number) => v >>> 0;

/**
 * One argument condition: falls through to the next instruction after it when the 64-bit
 * argument satisfies it (high words compared first), jumps to `fail` when not.
 */
function argCheck(a: SeccompArg, fail: string, pass: string, where: string): Insn[] {
  if (!Number.isInteger(a.index) || a.index < 0 || a.index > 5) {
    throw new MoatError("EINVAL", `seccomp ${where}: argument index ${a.index} is not 0 to 5`);
  }
  if (!Number.isSafeInteger(a.value) || a.value < 0 || !Number.isSafeInteger(a.valueTwo ?? 0)) {
    throw new MoatError("EINVAL", `seccomp ${where}: argument values must be non-negative integers`);
  }
  const v = a.value;
  const v2 = a.valueTwo ?? 0;
  const ldHi = stmt(BPF_LD_W_ABS, argHigh(a.index));
  const ldLo = () => stmt(BPF_LD_W_ABS, argLow(a.index));
  const block = (insns: Insn[]) => {
    // `pass` names the instruction after the block.
    return insns;
  };
  switch (a.op) {
    case "SCMP_CMP_EQ":
      return block([
        ldHi,
        jump(BPF_JMP_JEQ_K, hi(v), 0, fail),
        ldLo(),
        jump(BPF_JMP_JEQ_K, lo(v), pass, fail),
      ]);
    case "SCMP_CMP_NE":
      return block([
        ldHi,
        jump(BPF_JMP_JEQ_K, hi(v), 0, pass),
        ldLo(),
        jump(BPF_JMP_JEQ_K, lo(v), fail, pass),
      ]);
    case "SCMP_CMP_MASKED_EQ":
      return block([
        ldHi,
        stmt(BPF_ALU_AND_K, hi(v)),
        jump(BPF_JMP_JEQ_K, hi(v2), 0, fail),
        ldLo(),
        stmt(BPF_ALU_AND_K, lo(v)),
        jump(BPF_JMP_JEQ_K, lo(v2), pass, fail),
      ]);
    case "SCMP_CMP_GT":
    case "SCMP_CMP_GE":
      // arg > v: high word greater, or equal and the low word greater (GE: or equal).
      return block([
        ldHi,
        jump(BPF_JMP_JGT_K, hi(v), pass, 0),
        jump(BPF_JMP_JEQ_K, hi(v), 0, fail),
        ldLo(),
        jump(a.op === "SCMP_CMP_GT" ? BPF_JMP_JGT_K : BPF_JMP_JGE_K, lo(v), pass, fail),
      ]);
    case "SCMP_CMP_LT":
    case "SCMP_CMP_LE":
      // arg < v is not (arg >= v); arg <= v is not (arg > v).
      return block([
        ldHi,
        jump(BPF_JMP_JGT_K, hi(v), fail, 0),
        jump(BPF_JMP_JEQ_K, hi(v), 0, pass),
        ldLo(),
        jump(a.op === "SCMP_CMP_LT" ? BPF_JMP_JGE_K : BPF_JMP_JGT_K, lo(v), fail, pass),
      ]);
    default:
      throw new MoatError("EINVAL", `seccomp ${where}: unknown argument operator "${a.op}"`);
  }
}

/** Turn label targets into relative offsets (classic BPF jumps only forward, at most 255). */
function layout(prog: Insn[]): Buffer {
  const at = new Map<string, number>();
  prog.forEach((p, i) => {
    for (const l of p.labels ?? []) at.set(l, i);
  });
  const rel = (t: Target, i: number): number => {
    if (typeof t === "number") return t;
    const to = at.get(t);
    if (to === undefined) throw new Error(`seccomp: unresolved label ${t}`);
    const off = to - i - 1;
    if (off < 0 || off > 255) throw new MoatError("EINVAL", "seccomp: a rule is too long for a BPF jump");
    return off;
  };
  const out = Buffer.alloc(prog.length * 8);
  prog.forEach((p, i) => {
    out.writeUInt16LE(p.code, i * 8);
    out.writeUInt8(rel(p.jt, i), i * 8 + 2);
    out.writeUInt8(rel(p.jf, i), i * 8 + 3);
    out.writeUInt32LE(p.k, i * 8 + 4);
  });
  return out;
}

export interface CompiledSeccomp {
  /** struct sock_filter[]: 8 bytes per instruction, little-endian. */
  program: Buffer;
  instructions: number;
  /** Names in the profile this kernel table does not know (skipped, as runc does). */
  unknown: string[];
}

/** Compile a profile; an unusable one is an error that says what is wrong. */
export function compileSeccomp(profile: SeccompProfile): CompiledSeccomp {
  if (typeof profile !== "object" || profile === null || typeof profile.defaultAction !== "string") {
    throw new MoatError("EINVAL", "seccomp profile has no defaultAction");
  }
  for (const arch of profile.architectures ?? []) {
    if (!/^SCMP_ARCH_[A-Z0-9_]+$/.test(arch))
      throw new MoatError("EINVAL", `seccomp: unknown architecture "${arch}"`);
  }
  const def = action(profile.defaultAction, profile.defaultErrnoRet, "defaultAction");
  const unknown: string[] = [];
  const body: Insn[] = [];
  let label = 0;
  for (const [i, rule] of (profile.syscalls ?? []).entries()) {
    const where = `rule ${i}`;
    const ret = action(rule.action, rule.errnoRet, where);
    const args = rule.args ?? [];
    for (const name of rule.names ?? []) {
      const nr = SYSCALL_NUMBERS.get(name);
      if (nr === undefined) {
        unknown.push(name);
        continue;
      }
      // jeq nr, else to the end; each argument check (a failed one: to the end); ret
      // action. After argument checks the accumulator no longer holds nr: the end reloads it.
      const end = `end${label++}`;
      body.push(jump(BPF_JMP_JEQ_K, nr, 0, end));
      for (const a of args) {
        const next = `pass${label++}`;
        body.push(...argCheck(a, end, next, where));
        body.push({ ...stmt(0, 0), labels: [next], code: -1 }); // placeholder, merged below
      }
      body.push(stmt(BPF_RET_K, ret));
      body.push(
        args.length > 0
          ? { ...stmt(BPF_LD_W_ABS, OFF_NR), labels: [end] }
          : { ...stmt(-1, 0), labels: [end] },
      );
    }
  }
  const prog = mergePlaceholders([
    stmt(BPF_LD_W_ABS, OFF_ARCH),
    jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
    stmt(BPF_RET_K, def),
    stmt(BPF_LD_W_ABS, OFF_NR),
    jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
    stmt(BPF_RET_K, def),
    ...body,
    stmt(BPF_RET_K, def),
  ]);
  if (prog.length > 4096) {
    throw new MoatError(
      "EINVAL",
      `seccomp profile compiles to ${prog.length} instructions; the kernel takes at most 4096`,
    );
  }
  const program = layout(prog);
  return { program, instructions: prog.length, unknown };
}

/** Placeholders (code -1) only carry labels: they name the instruction that follows them. */
function mergePlaceholders(prog: Insn[]): Insn[] {
  const out: Insn[] = [];
  let pending: string[] = [];
  for (const p of prog) {
    if (p.code === -1) {
      pending.push(...(p.labels ?? []));
      continue;
    }
    out.push(pending.length > 0 ? { ...p, labels: [...(p.labels ?? []), ...pending] } : p);
    pending = [];
  }
  if (pending.length > 0) throw new Error("seccomp: a label at the end of the program");
  return out;
}
