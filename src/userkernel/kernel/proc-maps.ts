// /proc/<pid>/maps of one process: its VMAs, named as Linux names them. The address space
// does not record where a mapping came from (except through Vma.name), so the names are
// found the way the loader placed things: the program's PT_LOAD segments (read from its
// ELF header, mapped at the lowest address) carry the executable's path and file offsets,
// the brk area is [heap] and the VMA under the stack top is [stack].
import { pageDown, pageUp } from "../mm/memfile.js";
import type { MapView } from "../vfs/proc-types.js";
import type { Task } from "./task.js";

const PT_LOAD = 1;

interface Segment {
  start: number;
  /** End of the file-backed pages. */
  fileEnd: number;
  offset: number;
}

/** The executable's file-backed ranges, from the ELF header mapped at `base`. */
function segments(t: Task, base: number): Segment[] {
  try {
    const eh = t.mm.read(base, 64, "force");
    if (eh.readUInt32BE(0) !== 0x7f454c46) return [];
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    if (phentsize < 56 || phnum > 64) return [];
    const ph = t.mm.read(base + phoff, phentsize * phnum, "force");
    const loads: Array<{ vaddr: number; offset: number; filesz: number }> = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (ph.readUInt32LE(o) !== PT_LOAD) continue;
      loads.push({
        offset: Number(ph.readBigUInt64LE(o + 8)),
        vaddr: Number(ph.readBigUInt64LE(o + 16)),
        filesz: Number(ph.readBigUInt64LE(o + 32)),
      });
    }
    if (loads.length === 0) return [];
    // ET_EXEC has absolute addresses (bias 0); a PIE is loaded wherever its first page lies.
    const bias = base - pageDown(loads[0]!.vaddr);
    return loads.map((l) => ({
      start: bias + pageDown(l.vaddr),
      fileEnd: bias + pageUp(l.vaddr + l.filesz),
      offset: pageDown(l.offset),
    }));
  } catch {
    return [];
  }
}

export function processMaps(t: Task): MapView[] {
  const vmas = t.mm.list();
  const { brkStart, brkEnd } = t.mm;
  const stackTop = t.group.layout?.stackTop ?? 0;
  const first = vmas[0];
  const segs = first && first.start < brkStart ? segments(t, first.start) : [];
  return vmas.flatMap((v): MapView[] => {
    const m: MapView = {
      start: v.start,
      end: v.end,
      prot: v.prot,
      shared: v.shared,
      offset: 0,
      name: v.name ?? "",
    };
    // The program's VMAs (the loader names them by the path it was run as): named by the
    // executable as Linux does (the resolved path), with file offsets from its segments.
    if (segs.some((s) => s.start < v.end && v.start < s.fileEnd)) return bySegment(m, segs, t.group.exe);
    if (m.name) return [m];
    // Shared anonymous memory is a mapping of an unlinked /dev/zero on Linux.
    if (v.shared) m.name = "/dev/zero (deleted)";
    else if (brkEnd > brkStart && v.start >= brkStart && v.end <= pageUp(brkEnd)) m.name = "[heap]";
    else if (v.start < stackTop && stackTop <= v.end) m.name = "[stack]";
    return [m];
  });
}

/**
 * A VMA over the program's segments, cut where Linux's mappings of them end: each file-backed
 * part named with its file offset, the bss beyond a segment's last file page anonymous.
 */
function bySegment(m: MapView, segs: Segment[], exe: string): MapView[] {
  const cuts = new Set<number>([m.start, m.end]);
  for (const s of segs) for (const c of [s.start, s.fileEnd]) if (c > m.start && c < m.end) cuts.add(c);
  const points = [...cuts].sort((a, b) => a - b);
  const out: MapView[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const start = points[i]!;
    const seg = segs.find((s) => s.start <= start && start < s.fileEnd);
    const piece: MapView = { ...m, start, end: points[i + 1]!, offset: 0, name: "" };
    if (seg) {
      piece.name = exe;
      piece.offset = seg.offset + (start - seg.start);
    }
    // Adjacent anonymous pieces are one mapping, as Linux merges them.
    const prev = out[out.length - 1];
    if (prev && !seg && !prev.name) prev.end = piece.end;
    else out.push(piece);
  }
  return out;
}
