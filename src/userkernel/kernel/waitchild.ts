// Waiting for children (wait4, waitid): which child of the caller's group a request can
// match, what it reports (an end, a stop, a continue) and how it is consumed. The stop and
// continue reports come from the signal code through notifyStopped/notifyContinued.
import { fail } from "../errno.js";
import { reap } from "./exit.js";
import type { Task } from "./task.js";
import { type ExitStatus, type ThreadGroup, waitStatus } from "./thread-group.js";
import { ALL_EVENTS, block } from "./wait.js";

export const WNOHANG = 1;
export const WUNTRACED = 2;
export const WSTOPPED = 2;
export const WEXITED = 4;
export const WCONTINUED = 8;
export const WNOWAIT = 0x01000000;
export const __WNOTHREAD = 0x20000000;
export const __WALL = 0x40000000;
export const __WCLONE = 0x80000000 | 0;

const SIGCHLD = 17;

/** Which children: P_ALL, P_PID (one), P_PGID (one process group). */
export type WaitWho = { all: true } | { pid: number } | { pgid: number };

export interface WaitRequest {
  who: WaitWho;
  /** WEXITED, WSTOPPED, WCONTINUED, WNOHANG, WNOWAIT, __WALL, __WCLONE as waitid takes them. */
  options: number;
}

/** What a wait reports of one child. */
export interface WaitReport {
  child: ThreadGroup<Task>;
  kind: "exited" | "stopped" | "continued";
  /** exited: how; stopped: the stopping signal. */
  status?: ExitStatus;
  signal?: number;
}

/** wait4's *wstatus for a report: the exit status, (sig << 8) | 0x7f for a stop, 0xffff for a continue. */
export function wstatusOf(r: WaitReport): number {
  if (r.kind === "exited") return waitStatus(r.status!);
  if (r.kind === "stopped") return ((r.signal! & 0xff) << 8) | 0x7f;
  return 0xffff;
}

function eligible(child: ThreadGroup<Task>, req: WaitRequest): boolean {
  const w = req.who;
  if ("pid" in w && child.tgid !== w.pid) return false;
  if ("pgid" in w && child.pgid !== w.pgid) return false;
  // A "clone" child (exit signal other than SIGCHLD) only for __WCLONE, every child for __WALL.
  if (req.options & __WALL) return true;
  return (child.exitSignal !== SIGCHLD) === ((req.options & __WCLONE) !== 0);
}

/**
 * A child with something to report, consumed unless WNOWAIT (a reaped zombie is gone);
 * `none` if some child may still report later, ECHILD if none ever can.
 */
export function takeReport(parent: ThreadGroup<Task>, req: WaitRequest): WaitReport | "none" {
  let any = false;
  const consume = (req.options & WNOWAIT) === 0;
  for (const child of parent.children) {
    if (!eligible(child, req)) continue;
    if (parent.zombies.has(child)) {
      // A zombie can only report its end: without WEXITED it is no child to wait for
      // (Linux's wait_task_zombie), and a wait that has no other is ECHILD.
      if (!(req.options & WEXITED)) continue;
      if (consume) reap(parent, child);
      return { child, kind: "exited", status: child.exitStatus ?? { signal: 9 } };
    }
    any = true;
    if (child.stopReport !== undefined && req.options & WSTOPPED) {
      const signal = child.stopReport;
      if (consume) child.stopReport = undefined;
      return { child, kind: "stopped", signal };
    }
    if (child.continueReport && req.options & WCONTINUED) {
      if (consume) child.continueReport = false;
      return { child, kind: "continued" };
    }
  }
  return any ? "none" : fail("ECHILD");
}

/**
 * Wait for a report: at once with WNOHANG (undefined when there is none yet), otherwise
 * blocked on the group's child events until a child changes state; EINTR if interrupted.
 * Synchronous when there is something to report (or WNOHANG), as most waits find.
 */
export function waitForChild(
  t: Task,
  req: WaitRequest,
): WaitReport | undefined | Promise<WaitReport | undefined> {
  const r = takeReport(t.group, req);
  if (r !== "none") return r;
  if (req.options & WNOHANG) return undefined;
  return (async () => {
    for (;;) {
      // Checked and blocked in one synchronous stretch: no child event can fall in between.
      const found = takeReport(t.group, req);
      if (found !== "none") return found;
      if ((await block(t, [[t.group.childEvents, ALL_EVENTS]], undefined, "wait4")) === "interrupted")
        fail("EINTR");
    }
  })();
}

/**
 * The signal code's hook: `group` was stopped by `sig` (SIGSTOP, SIGTSTP, ...). Its parent's
 * WUNTRACED/WSTOPPED waits report it once.
 */
export function notifyStopped(group: ThreadGroup<Task>, sig: number): void {
  group.stopReport = sig;
  group.continueReport = false;
  group.parent?.childChanged();
}

/** The signal code's hook: `group` was continued (SIGCONT); WCONTINUED waits report it once. */
export function notifyContinued(group: ThreadGroup<Task>): void {
  group.stopReport = undefined;
  group.continueReport = true;
  group.parent?.childChanged();
}
