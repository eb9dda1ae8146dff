// /proc/<pid>/stat and /proc/<pid>/status of one process of the sandbox, in the formats of
// proc(5), which ps and top parse by position (stat) or by field name (status).
import type { ProcessView } from "./proc-types.js";

/** USER_HZ: the unit of the times in /proc (sysconf(_SC_CLK_TCK)). */
export const CLK_TCK = 100;
const PAGE = 4096;

const ticks = (ns: bigint): number => Number(ns / (1_000_000_000n / BigInt(CLK_TCK)));

/**
 * /proc/<pid>/stat: the 52 fields of proc(5), one line. `bootNs`: the kernel's boot (hrtime);
 * `reader`: the process reads its own stat, so it runs.
 */
export function statLine(v: ProcessView, bootNs: bigint, reader = false): string {
  const t = v.usage();
  const sig = v.signals();
  const fields: Array<number | string | bigint> = [
    v.pid,
    `(${v.comm})`,
    reader ? "R" : v.state(),
    v.ppid,
    v.pgid ?? v.pid, // pgrp
    v.sid ?? v.pid, // session
    0, // tty_nr: no terminals
    -1, // tpgid
    0x400000, // flags: PF_RANDOMIZE (the layout is randomised)
    0, // minflt
    0, // cminflt
    0, // majflt
    0, // cmajflt
    t.utimeTicks,
    t.stimeTicks,
    0, // cutime
    0, // cstime
    20, // priority
    0, // nice
    1, // num_threads
    0, // itrealvalue
    ticks(v.startNs - bootNs),
    t.vsize,
    t.rssPages,
    "18446744073709551615", // rsslim: RLIM_INFINITY
    0, // startcode
    0, // endcode
    0, // startstack
    0, // kstkesp
    0, // kstkeip
    sig.pending,
    sig.blocked,
    sig.ignored,
    sig.caught,
    0, // wchan
    0, // nswap
    0, // cnswap
    17, // exit_signal: SIGCHLD
    0, // processor
    0, // rt_priority
    0, // policy: SCHED_OTHER
    0, // delayacct_blkio_ticks
    0, // guest_time
    0, // cguest_time
    0, // start_data
    0, // end_data
    0, // start_brk
    0, // arg_start
    0, // arg_end
    0, // env_start
    0, // env_end
    0, // exit_code
  ];
  return `${fields.join(" ")}\n`;
}

const STATE_NAMES: Record<string, string> = { R: "R (running)", S: "S (sleeping)" };

const hex = (n: bigint): string => n.toString(16).padStart(16, "0");
const kB = (bytes: number): string => `${String(Math.floor(bytes / 1024)).padStart(8)} kB`;

/** /proc/<pid>/status: the fields ps, top and people look for, with tabs as in proc(5). */
export function statusText(v: ProcessView, reader = false): string {
  const t = v.usage();
  const sig = v.signals();
  const ids = (n: number): string => `${n}\t${n}\t${n}\t${n}`;
  return [
    `Name:\t${v.comm}`,
    `Umask:\t${v.umask.toString(8).padStart(4, "0")}`,
    `State:\t${STATE_NAMES[reader ? "R" : v.state()]}`,
    `Tgid:\t${v.pid}`,
    `Ngid:\t0`,
    `Pid:\t${v.pid}`,
    `PPid:\t${v.ppid}`,
    `TracerPid:\t0`,
    `Uid:\t${ids(v.uid)}`,
    `Gid:\t${ids(v.gid)}`,
    `FDSize:\t64`,
    `Groups:\t${v.groups.join(" ")}`,
    `VmSize:\t${kB(t.vsize)}`,
    `VmRSS:\t${kB(t.rssPages * PAGE)}`,
    `Threads:\t${v.tids?.().length ?? 1}`,
    `SigQ:\t0/0`,
    `SigPnd:\t${hex(sig.pending)}`,
    `ShdPnd:\t${hex(0n)}`,
    `SigBlk:\t${hex(sig.blocked)}`,
    `SigIgn:\t${hex(sig.ignored)}`,
    `SigCgt:\t${hex(sig.caught)}`,
    "",
  ].join("\n");
}
