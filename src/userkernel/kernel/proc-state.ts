// Per-process facts that /proc, prctl and the scheduling calls keep and the Task has no field
// for yet: where the initial environment lies in memory (Linux's mm->env_start/env_end, which
// /proc/<pid>/environ reads), oom_score_adj, the timer slack, the
// scheduling policy, nice value, CPU affinity, I/O priority and membarrier registrations.
// Kept beside the task, keyed by it; the process model that replaces Task (thread group,
// thread and address space) is where they belong.
import { Reg } from "../../sys/ptrace.js";
import type { Task } from "./task.js";

export interface ProcState {
  /** [start, end) of the environment strings the loader wrote (0, 0: unknown). */
  envStart: number;
  envEnd: number;
  /** [start, end) of the argument strings, and the entry stack pointer (mm->start_stack). */
  argStart: number;
  argEnd: number;
  startStack: number;
  /** [start, end) of the auxiliary vector, AT_NULL included (0, 0: unknown). */
  auxvStart: number;
  auxvEnd: number;
  oomScoreAdj: number;
  /** PR_SET_TIMERSLACK, in ns (Linux's default: 50 us). */
  timerslackNs: number;
  /** sched_setscheduler's policy (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE). */
  policy: number;
  /** SCHED_RESET_ON_FORK / SCHED_FLAG_RESET_ON_FORK: children start with the default policy. */
  resetOnFork: boolean;
  /** The nice value, -20..19. */
  nice: number;
  /** sched_setaffinity's mask (bit n: CPU n); undefined: every CPU of the sandbox. */
  affinity: bigint | undefined;
  /** ioprio_set's value (class << 13 | data); 0: none set. */
  ioprio: number;
  /** MEMBARRIER_CMD_REGISTER_* commands registered (their bits). */
  membarrier: number;
}

/** Keyed by the thread group (the process): every thread of it sees the same facts. */
const states = new WeakMap<object, ProcState>();

export function procState(t: Task): ProcState {
  let s = states.get(t.group);
  if (!s) {
    s = {
      envStart: 0,
      envEnd: 0,
      auxvStart: 0,
      auxvEnd: 0,
      argStart: 0,
      argEnd: 0,
      startStack: 0,
      oomScoreAdj: 0,
      timerslackNs: 50_000,
      policy: 0,
      resetOnFork: false,
      nice: 0,
      affinity: undefined,
      ioprio: 0,
      membarrier: 0,
    };
    states.set(t.group, s);
  }
  return s;
}

/**
 * Note where the environment is while the registers still hold the entry stack pointer
 * (right after a load): argc, argv[], NULL, envp[], NULL, as create_elf_tables lays them out.
 */
export function noteInitialStack(t: Task): void {
  const s = procState(t);
  s.envStart = 0;
  s.envEnd = 0;
  s.auxvStart = 0;
  s.auxvEnd = 0;
  s.argStart = 0;
  s.argEnd = 0;
  try {
    const sp = Number(t.cpu.regs.u64[Reg.rsp]!);
    const argc = Number(t.mm.readU64(sp));
    s.startStack = sp;
    if (argc > 0) {
      s.argStart = Number(t.mm.readU64(sp + 8));
      const lastArg = Number(t.mm.readU64(sp + 8 * argc));
      s.argEnd = lastArg + Buffer.byteLength(t.mm.readCString(lastArg, 32 * 4096, "latin1"), "latin1") + 1;
    }
    let p = sp + 8 * (argc + 2);
    let first = 0;
    let last = 0;
    for (let i = 0; i < 1 << 20; i++, p += 8) {
      const e = Number(t.mm.readU64(p));
      if (e === 0) break;
      if (first === 0) first = e;
      last = e;
    }
    // The auxiliary vector follows envp's NULL: (type, value) pairs up to AT_NULL.
    let q = p + 8;
    while (t.mm.readU64(q) !== 0n && q - p < 4096) q += 16;
    s.auxvStart = p + 8;
    s.auxvEnd = q + 16;
    if (first === 0) return;
    s.envStart = first;
    s.envEnd = last + Buffer.byteLength(t.mm.readCString(last, 32 * 4096, "latin1"), "latin1") + 1;
  } catch {
    // A stack that is not the loader's: environ reads empty.
  }
}
