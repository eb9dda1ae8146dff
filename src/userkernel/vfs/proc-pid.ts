// /proc/<pid>/stat and /proc/<pid>/status of one process of the sandbox, in the formats of
// proc(5), which ps and top parse by position (stat) or by field name (status).
import type { ProcessView, ThreadView } from "./proc-types.js";

/** USER_HZ: the unit of the times in /proc (sysconf(_SC_CLK_TCK)). */
export const CLK_TCK = 100;
const PAGE = 4096;

const ticks = (ns: bigint): number => Number(ns / (1_000_000_000n / BigInt(CLK_TCK)));

/**
 * /proc/<pid>/stat: the 52 fields of proc(5), one line. `bootNs`: the kernel's boot (hrtime);
 * `reader`: the process reads its own stat, so it runs; `thread`: the line of one of its
 * threads (/proc/<pid>/task/<tid>/stat).
 */
export function statLine(v: ProcessView, bootNs: bigint, reader = false, thread?: ThreadView): string {
  const t = v.usage();
  const sig = v.signals();
  const l = v.layout();
  // The program's code and data: its executable and writable mappings of the file.
  const exe = v.maps().filter((m) => m.name === v.exe);
  const code = exe.filter((m) => m.prot & 4);
  const data = exe.filter((m) => m.prot & 2);
  const fields: Array<number | string | bigint> = [
    thread?.tid ?? v.pid,
    `(${thread?.comm ?? v.comm})`,
    reader ? "R" : (thread ?? v).state(),
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
    v.threads().length, // num_threads
    0, // itrealvalue
    ticks(v.startNs - bootNs),
    t.vsize,
    t.rssPages,
    "18446744073709551615", // rsslim: RLIM_INFINITY
    code[0]?.start ?? 0, // startcode
    code[code.length - 1]?.end ?? 0, // endcode
    l.startStack, // startstack
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
    data[0]?.start ?? 0, // start_data
    data[data.length - 1]?.end ?? 0, // end_data
    l.brkStart, // start_brk
    l.argStart, // arg_start
    l.argEnd, // arg_end
    l.envStart, // env_start
    l.envEnd, // env_end
    0, // exit_code
  ];
  return `${fields.join(" ")}\n`;
}

const STATE_NAMES: Record<string, string> = { R: "R (running)", S: "S (sleeping)" };

const hex = (n: bigint): string => n.toString(16).padStart(16, "0");
const kB = (bytes: number): string => `${String(Math.floor(bytes / 1024)).padStart(8)} kB`;

/** /proc/<pid>/status: the fields ps, top and people look for, with tabs as in proc(5). */
/** VmData, VmStk and VmExe as Linux counts them: private writable memory, the stack, the program's code. */
function vmFigures(v: ProcessView): { data: number; stack: number; exe: number } {
  let data = 0;
  let stack = 0;
  let exe = 0;
  for (const m of v.maps()) {
    const size = m.end - m.start;
    if (m.name === "[stack]") stack += size;
    else if (m.prot & 2 && !m.shared) data += size;
    else if (m.prot & 4 && m.name === v.exe) exe += size;
  }
  return { data, stack, exe };
}

export function statusText(v: ProcessView, reader = false, thread?: ThreadView): string {
  const t = v.usage();
  const vm = vmFigures(v);
  const sig = v.signals();
  const ids = (n: number): string => `${n}\t${n}\t${n}\t${n}`;
  return [
    `Name:\t${thread?.comm ?? v.comm}`,
    `Umask:\t${v.umask.toString(8).padStart(4, "0")}`,
    `State:\t${STATE_NAMES[reader ? "R" : (thread ?? v).state()]}`,
    `Tgid:\t${v.pid}`,
    `Ngid:\t0`,
    `Pid:\t${thread?.tid ?? v.pid}`,
    `PPid:\t${v.ppid}`,
    `TracerPid:\t0`,
    `Uid:\t${ids(v.uid)}`,
    `Gid:\t${ids(v.gid)}`,
    `FDSize:\t64`,
    `Groups:\t${v.groups.join(" ")}`,
    `VmPeak:\t${kB(t.vsize)}`,
    `VmSize:\t${kB(t.vsize)}`,
    `VmLck:\t${kB(0)}`,
    `VmPin:\t${kB(0)}`,
    `VmHWM:\t${kB(t.rssPages * PAGE)}`,
    `VmRSS:\t${kB(t.rssPages * PAGE)}`,
    `VmData:\t${kB(vm.data)}`,
    `VmStk:\t${kB(vm.stack)}`,
    `VmExe:\t${kB(vm.exe)}`,
    `VmLib:\t${kB(0)}`,
    `VmPTE:\t${kB(0)}`,
    `VmSwap:\t${kB(0)}`,
    `Threads:\t${v.threads().length}`,
    `SigQ:\t0/0`,
    `SigPnd:\t${hex(sig.pending)}`,
    `ShdPnd:\t${hex(0n)}`,
    `SigBlk:\t${hex(sig.blocked)}`,
    `SigIgn:\t${hex(sig.ignored)}`,
    `SigCgt:\t${hex(sig.caught)}`,
    "",
  ].join("\n");
}

/** /proc/<pid>/statm: size, resident, shared, text, lib, data, dirty, in pages. */
export function statmText(v: ProcessView | undefined): string {
  if (!v) return "";
  const t = v.usage();
  const vm = vmFigures(v);
  const pages = (b: number): number => Math.floor(b / PAGE);
  return `${pages(t.vsize)} ${t.rssPages} 0 ${pages(vm.exe)} 0 ${pages(vm.data + vm.stack)} 0\n`;
}
