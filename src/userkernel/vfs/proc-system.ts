// The sandbox-wide files of /proc that free, top and uptime read: meminfo, stat, uptime and
// loadavg, in proc(5)'s formats. They describe the sandbox (its processes, its memory
// budget, its boot), not the host: the host's CPU counters are not shown.
import * as os from "node:os";
import type { MemoryFigures } from "../mm/usage.js";
import { CLK_TCK } from "./proc-pid.js";
import type { ProcessSource } from "./proc-types.js";

const kB = (bytes: number): string => `${String(Math.floor(bytes / 1024)).padStart(8)} kB`;

export function meminfoText(m: MemoryFigures): string {
  const rows: Array<[string, number]> = [
    ["MemTotal", m.total],
    ["MemFree", m.free],
    ["MemAvailable", m.available],
    ["Buffers", m.buffers],
    ["Cached", m.cached],
    ["SwapCached", 0],
    // free, top and psutil read these by name; the sandbox has no swap, slab or dirty pages.
    ["SwapTotal", 0],
    ["SwapFree", 0],
    ["Dirty", 0],
    ["Shmem", 0],
    ["Slab", 0],
    ["SReclaimable", 0],
    ["SUnreclaim", 0],
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(16)}${kB(v)}\n`).join("");
}

const seconds = (bootNs: bigint): number => Number(process.hrtime.bigint() - bootNs) / 1e9;

/** /proc/uptime: seconds since the sandbox booted, and idle seconds summed over CPUs. */
export function uptimeText(bootNs: bigint, procs: ProcessSource): string {
  const up = seconds(bootNs);
  const busy = busyTicks(procs) / CLK_TCK;
  const idle = Math.max(0, up * os.cpus().length - busy);
  return `${up.toFixed(2)} ${idle.toFixed(2)}\n`;
}

function busyTicks(procs: ProcessSource): number {
  let n = 0;
  for (const pid of procs.pids()) {
    const u = procs.get(pid)?.usage();
    if (u) n += u.utimeTicks + u.stimeTicks;
  }
  return n;
}

/**
 * /proc/stat: the CPU time of the sandbox's processes (user and system as the host counts
 * their stubs), the rest of the time since boot idle; one line per CPU, then the counters.
 */
export function statText(bootNs: bigint, bootRealtimeS: number, procs: ProcessSource): string {
  const ncpu = Math.max(1, os.cpus().length);
  let user = 0;
  let system = 0;
  const pids = procs.pids();
  for (const pid of pids) {
    const u = procs.get(pid)?.usage();
    if (!u) continue;
    user += u.utimeTicks;
    system += u.stimeTicks;
  }
  const perCpu = Math.floor(seconds(bootNs) * CLK_TCK);
  // The processes' time is not split by CPU: it is shown on cpu0, the others idle.
  const idle0 = Math.max(0, perCpu - user - system);
  const line = (name: string, u: number, s: number, i: number): string =>
    `${name} ${u} 0 ${s} ${i} 0 0 0 0 0 0\n`;
  let out = line("cpu ", user, system, idle0 + (ncpu - 1) * perCpu);
  for (let c = 0; c < ncpu; c++)
    out += c === 0 ? line("cpu0", user, system, idle0) : line(`cpu${c}`, 0, 0, perCpu);
  // The reader runs (it reads this file), whatever wait its read went through.
  const running = Math.max(1, pids.filter((p) => procs.get(p)?.state() === "R").length);
  return (
    out +
    "intr 0\nctxt 0\n" +
    `btime ${Math.floor(bootRealtimeS)}\n` +
    `processes ${pids.length === 0 ? 0 : Math.max(...pids)}\n` +
    `procs_running ${running}\nprocs_blocked 0\n` +
    "softirq 0 0 0 0 0 0 0 0 0 0 0\n"
  );
}

/** /proc/loadavg: no load history is kept; the runnable and total counts and the last pid are real. */
export function loadavgText(procs: ProcessSource): string {
  const pids = procs.pids();
  const running = pids.filter((p) => procs.get(p)?.state() === "R").length;
  const last = pids.length === 0 ? 0 : Math.max(...pids);
  return `0.00 0.00 0.00 ${running}/${pids.length} ${last}\n`;
}
