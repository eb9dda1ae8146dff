// The per-process text files of /proc that are not stat/status: maps, limits and fdinfo,
// in the formats Linux's fs/proc prints (readers parse them by column).

import type { FileDescription } from "../kernel/fdtable.js";
import { EventFd } from "./eventfd.js";
import { VfsFile } from "./file.js";
import type { MapView } from "./proc-types.js";

const hex8 = (n: number): string => n.toString(16).padStart(8, "0");

/** /proc/<pid>/maps: show_map_vma's line, the name padded to column 73. */
export function mapsText(maps: readonly MapView[]): string {
  return maps
    .map((m) => {
      const perms = `${m.prot & 1 ? "r" : "-"}${m.prot & 2 ? "w" : "-"}${m.prot & 4 ? "x" : "-"}${m.shared ? "s" : "p"}`;
      const head = `${hex8(m.start)}-${hex8(m.end)} ${perms} ${hex8(m.offset)} 00:00 0 `;
      return m.name ? `${head.padEnd(72)} ${m.name}\n` : `${head}\n`;
    })
    .join("");
}

const RLIM_INFINITY = 0xffffffffffffffffn;
/** Linux's names and units, by RLIMIT_* number (fs/proc/base.c lnames). */
const LIMITS: Array<[string, string]> = [
  ["Max cpu time", "seconds"],
  ["Max file size", "bytes"],
  ["Max data size", "bytes"],
  ["Max stack size", "bytes"],
  ["Max core file size", "bytes"],
  ["Max resident set", "bytes"],
  ["Max processes", "processes"],
  ["Max open files", "files"],
  ["Max locked memory", "bytes"],
  ["Max address space", "bytes"],
  ["Max file locks", "locks"],
  ["Max pending signals", "signals"],
  ["Max msgqueue size", "bytes"],
  ["Max nice priority", ""],
  ["Max realtime priority", ""],
  ["Max realtime timeout", "us"],
];

/** /proc/<pid>/limits. */
export function limitsText(rlimits: ReadonlyMap<number, readonly [bigint, bigint]>): string {
  const v = (x: bigint): string => (x === RLIM_INFINITY ? "unlimited" : String(x));
  let out = `${"Limit".padEnd(25)} ${"Soft Limit".padEnd(20)} ${"Hard Limit".padEnd(20)} ${"Units".padEnd(10)}\n`;
  LIMITS.forEach(([name, unit], i) => {
    const [soft, hard] = rlimits.get(i) ?? [RLIM_INFINITY, RLIM_INFINITY];
    out += `${name.padEnd(25)} ${v(soft).padEnd(20)} ${v(hard).padEnd(20)} ${unit ? `${unit.padEnd(10)}\n` : "\n"}`;
  });
  return out;
}

const O_CLOEXEC = 0o2000000;
const SEEK_CUR = 1;

/** /proc/<pid>/fdinfo/N: the position, the status flags (with O_CLOEXEC), the mount and inode. */
export function fdinfoText(d: FileDescription, cloexec: boolean, mountId: number): string {
  let pos = 0;
  const f: FileDescription = d;
  if (d instanceof VfsFile && f.seek) {
    try {
      const p = f.seek(0, SEEK_CUR);
      if (typeof p === "number") pos = p;
    } catch {
      // A description without a position (a pipe) shows 0, as Linux's do.
    }
  }
  const flags = d.flags | (cloexec ? O_CLOEXEC : 0);
  const base = `pos:\t${pos}\nflags:\t0${flags.toString(8)}\nmnt_id:\t${mountId}\nino:\t${d.stat().ino}\n`;
  // An eventfd adds its counter, as Linux's eventfd_show_fdinfo does.
  return d instanceof EventFd ? `${base}eventfd-count: ${d.value.toString(16).padStart(16, " ")}\n` : base;
}
