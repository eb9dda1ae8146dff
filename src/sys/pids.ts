// Whether a process id names a live process: the check that decides whether a leftover
// named after its maker's pid (a lease, a temp directory) can be removed. No libc needed:
// Node's kill(pid, 0) asks the kernel without sending anything.
import { readdirSync, readFileSync } from "node:fs";

/** True while `pid` exists, also when it belongs to a user we may not signal (EPERM). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A process as a leftover's record names it: its pid and start time, so a reused pid is not it. */
export interface ProcessRef {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks after boot). */
  start: string;
}

/** Field 22 of /proc/PID/stat: the start time, which tells a reused pid from ours. A zombie has none. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

/** This process, as a record names it. */
export function selfRef(): ProcessRef {
  return { pid: process.pid, start: processStart(process.pid) ?? "" };
}

/** Is the process this ref named still running (same pid, same start time)? */
export function refAlive(ref: ProcessRef): boolean {
  const start = processStart(ref.pid);
  return start !== undefined && start === ref.start;
}

/** Every live descendant of `pid` (children, their children, ...), with start times. */
export function descendantsOf(pid: number): ProcessRef[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch {
      // gone already
    }
  }
  const out: ProcessRef[] = [];
  const todo = [...(children.get(pid) ?? [])];
  while (todo.length) {
    const p = todo.pop()!;
    const start = processStart(p);
    if (start !== undefined) out.push({ pid: p, start });
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}
