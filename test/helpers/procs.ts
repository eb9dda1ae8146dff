// The host's processes as the tests look for leftovers: by what their command line says.
import { readdirSync, readFileSync } from "node:fs";

/** Pids of processes (other than this one) whose argv satisfies `match`. */
export function processesWhere(match: (argv: string[], cmdline: string) => boolean): number[] {
  const found: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${e}/cmdline`, "latin1");
    } catch {
      continue; // gone
    }
    if (match(cmdline.split("\0"), cmdline)) found.push(Number(e));
  }
  return found;
}

/** Pids of live processes whose command line contains `needle`. */
export function processesWith(needle: string): number[] {
  return processesWhere((_argv, cmdline) => cmdline.includes(needle));
}

export function killAll(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** Host processes whose parent is `ppid`, zombies included (a zombie was not reaped). */
export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === ppid) out.push(Number(d));
    } catch {
      // gone already
    }
  }
  return out;
}
