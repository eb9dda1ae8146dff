// The CPU time of host threads, as the host's scheduler counts it: schedstat gives the
// precise total in ns; stat's utime and stime (in ticks) split it into user and system time
// as Linux's own cputime_adjust does. The time of threads that ended is kept by their
// process (any object naming it), so that a process's total does not drop when one ends.
// No kernel types here: task.ts records a thread's end through it.
import { readFileSync } from "node:fs";

const NS = 1_000_000_000n;
/** Clock ticks per second in /proc/<pid>/stat (USER_HZ, fixed at 100 on x86-64). */
const USER_HZ = 100n;

export interface CpuTimes {
  /** user + system, in ns. */
  total: bigint;
  user: bigint;
  sys: bigint;
}

export const ZERO: CpuTimes = { total: 0n, user: 0n, sys: 0n };

export function add(a: CpuTimes, b: CpuTimes): CpuTimes {
  return { total: a.total + b.total, user: a.user + b.user, sys: a.sys + b.sys };
}

export function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return undefined;
  }
}

/** utime and stime ticks from a /proc stat line (fields 14 and 15). */
function statTicks(stat: string): [bigint, bigint] {
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return [BigInt(f[11] ?? "0"), BigInt(f[12] ?? "0")];
}

/** The last reading of each live host thread ("pid/tid"), to split each new stretch of time. */
const last = new Map<string, { ut: bigint; st: bigint; total: bigint; user: bigint }>();

/**
 * The CPU time of the host thread at /proc/<pid>/task/<tid>; zero once it is gone. The
 * precise total is split into user and system time by the ticks of the stretch since the
 * last reading (a stretch without ticks by the thread's overall ratio), so a computing loop
 * reads as user time even after a stretch of many system calls, whose ptrace stops count as
 * system time; the split never goes backwards.
 */
export function hostThreadTimes(pid: number, tid: number): CpuTimes {
  const dir = `/proc/${pid}/task/${tid}`;
  const stat = readOr(`${dir}/stat`);
  if (stat === undefined) return ZERO;
  const [ut, st] = statTicks(stat);
  const sched = readOr(`${dir}/schedstat`);
  const total = sched !== undefined ? BigInt(sched.split(" ")[0] ?? "0") : ((ut + st) * NS) / USER_HZ;
  const key = `${pid}/${tid}`;
  let prev = last.get(key) ?? { ut: 0n, st: 0n, total: 0n, user: 0n };
  // Ticks that went backwards: the tid is another thread's now; start afresh.
  if (ut < prev.ut || st < prev.st) prev = { ut: 0n, st: 0n, total: 0n, user: 0n };
  const dt = total > prev.total ? total - prev.total : 0n;
  const [du, ds] = [ut - prev.ut, st - prev.st];
  let user = prev.user;
  if (du + ds > 0n) user += (dt * du) / (du + ds);
  else user += ut + st === 0n ? dt : (dt * ut) / (ut + st);
  const now = total > prev.total ? total : prev.total;
  if (user > now) user = now;
  last.set(key, { ut, st, total: now, user });
  return { total: now, user, sys: now - user };
}

/** Time of a process's threads that already ended, by the object that names the process. */
const ended = new WeakMap<object, CpuTimes>();

export function endedTimes(process: object): CpuTimes {
  return ended.get(process) ?? ZERO;
}

/**
 * A thread is leaving `process`: its time (host thread `tid` of host process `pid`) stays
 * with the process. Call while the host thread still exists.
 */
export function accountThreadExit(process: object, pid: number, tid: number): void {
  ended.set(process, add(endedTimes(process), hostThreadTimes(pid, tid)));
  last.delete(`${pid}/${tid}`);
}
