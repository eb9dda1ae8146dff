// The syscall table as people read it: the counts by support and the markdown table that
// docs/userkernel-syscalls.md holds (written by bench/syscalls.ts, checked by a test).
import { SYSCALL_TABLE, type SyscallRow } from "./table.js";
import type { Support } from "./types.js";

export type SupportCounts = Record<Support, number> & { total: number };

export function supportCounts(rows: readonly SyscallRow[] = SYSCALL_TABLE): SupportCounts {
  const c: SupportCounts = { full: 0, partial: 0, error: 0, none: 0, total: rows.length };
  for (const r of rows) c[r.support]++;
  return c;
}

/** One line of counts, as the issue note quotes them. */
export function countsLine(c: SupportCounts = supportCounts()): string {
  return `${c.full} full + ${c.partial} partial + ${c.error} error (fails by design) + ${c.none} ENOSYS of ${c.total}`;
}

const cell = (s: string): string => s.replaceAll("|", "\\|");

/** docs/userkernel-syscalls.md, whole. */
export function tableMarkdown(rows: readonly SyscallRow[] = SYSCALL_TABLE): string {
  const head = [
    "# The userkernel's system calls",
    "",
    "<!-- Generated from src/userkernel/syscalls/table.ts by `node dist/bench/syscalls.js --write`",
    "     (after `npm run build`); test/userkernel/syscall-table.test.ts fails when it is stale. -->",
    "",
    "Every x86-64 system call number, in order. **full**: Linux's semantics; **partial**: the",
    "common cases (the note says what is missing); **error**: always fails, by design (the note",
    "says why); **none**: not served, returns `ENOSYS` and is reported by name at the end of the",
    "run (the userkernel logs `unimplemented syscalls (returned ENOSYS): name xN ...`).",
    "",
    `Counts: ${countsLine(supportCounts(rows))}.`,
    "",
    "| nr | name | support | note |",
    "|---:|---|---|---|",
  ];
  const body = rows.map((r) => `| ${r.nr} | ${r.name} | ${r.support} | ${cell(r.note ?? "")} |`);
  return `${[...head, ...body].join("\n")}\n`;
}
