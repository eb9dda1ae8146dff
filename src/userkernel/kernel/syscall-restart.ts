// What becomes of a system call that a signal interrupted (it failed with EINTR because its
// block was interrupted), decided in the delivery stage as Linux decides it from the
// ERESTART* codes (signal(7), "Interruption of system calls and library functions by signal
// handlers"):
// - "sys" (ERESTARTSYS): restarted if no handler runs, or the handler has SA_RESTART;
//   read, write, open of a FIFO, wait4, waitid, futex waits, flock, fcntl locks, getrandom...
// - "nohand" (ERESTARTNOHAND, ERESTART_RESTARTBLOCK): restarted only if no handler runs (a
//   stop and continue, an ignored signal); EINTR after any handler, SA_RESTART or not:
//   poll, select, nanosleep, clock_nanosleep, pause, sigsuspend.
// - "intr": never restarted: epoll_wait, rt_sigtimedwait, semop, msgrcv, io_getevents.
// A relative sleep (nanosleep, clock_nanosleep without TIMER_ABSTIME) and a futex wait with a
// timeout restart as Linux's ERESTART_RESTARTBLOCK does: through restart_syscall, which waits
// to the first deadline (Task.restartBlock), so a stop and continue does not start it over.
import { Errno } from "../../sys/errno.js";
import type { SigAction } from "./signals-state.js";
import type { Task } from "./task.js";

export type { RestartKind } from "./task.js";

const NOHAND = new Set([
  7 /* poll */, 23 /* select */, 34 /* pause */, 35 /* nanosleep */, 130 /* rt_sigsuspend */,
  230 /* clock_nanosleep */, 270 /* pselect6 */, 271 /* ppoll */,
]);
const INTR = new Set([
  64 /* semget... semop */, 65 /* semop */, 70 /* msgrcv */, 69 /* msgsnd */, 128 /* rt_sigtimedwait */,
  208 /* io_getevents */, 220 /* semtimedop */, 232 /* epoll_wait */, 281 /* epoll_pwait */,
  441 /* epoll_pwait2 */,
]);

const SA_RESTART = 0x1000_0000n;
const NR_RESTART_SYSCALL = 219n;
const EINTR = BigInt(-Errno.EINTR);
const SYSCALL_INSN_LEN = 2n;

/** Note, when a system call ends with `ret`, whether the delivery stage may restart it. */
export function noteSyscallEnd(t: Task, nr: number, ret: bigint): void {
  // A call that left a restart block ends as ERESTART_RESTARTBLOCK: restarted only if no handler runs.
  t.restartKind =
    ret !== EINTR ? undefined : t.restartBlock || NOHAND.has(nr) ? "nohand" : INTR.has(nr) ? "intr" : "sys";
}

/**
 * The delivery stage found `handled` (a handler about to get a frame) or nothing to run
 * (undefined): the interrupted system call goes back to its `syscall` instruction with its
 * number in rax, or keeps its EINTR. Once per system call.
 */
export function settleRestart(t: Task, handled: SigAction | undefined): void {
  const kind = t.restartKind;
  if (kind === undefined) return;
  t.restartKind = undefined;
  const restart =
    handled === undefined ? kind !== "intr" : kind === "sys" && (handled.flags & SA_RESTART) !== 0n;
  const block = t.restartBlock;
  if (!restart) {
    t.restartBlock = undefined;
    return;
  }
  const r = t.cpu.regs;
  r.set("rip", r.get("rip") - SYSCALL_INSN_LEN);
  // With a restart block the call goes on through restart_syscall, not from the start.
  r.set("rax", block ? NR_RESTART_SYSCALL : r.get("orig_rax"));
  t.cpu.regsChanged();
}
