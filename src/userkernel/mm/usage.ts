// The memory figures a sandbox shows its programs (sysinfo(2), /proc/meminfo): with a budget
// (`--memory`), the budget is the total and what its processes have mapped is used; without
// one, the host's own figures. Either way free <= available <= total, as free(1) expects.
import { readFileSync } from "node:fs";
import * as os from "node:os";
import type { MemoryBudget } from "./memfile.js";

export interface MemoryFigures {
  /** Bytes. */
  total: number;
  free: number;
  available: number;
  buffers: number;
  cached: number;
}

/** The host's /proc/meminfo fields, in bytes (os.totalmem/freemem when it cannot be read). */
function hostFigures(): MemoryFigures {
  let text = "";
  try {
    text = readFileSync("/proc/meminfo", "latin1");
  } catch {
    // not Linux, or /proc hidden: Node's figures
  }
  const field = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const total = field("MemTotal") ?? os.totalmem();
  const free = Math.min(field("MemFree") ?? os.freemem(), total);
  const available = Math.min(Math.max(field("MemAvailable") ?? free, free), total);
  return { total, free, available, buffers: field("Buffers") ?? 0, cached: field("Cached") ?? 0 };
}

export function memoryFigures(budget: MemoryBudget | undefined): MemoryFigures {
  const host = hostFigures();
  if (!budget || !Number.isFinite(budget.limit)) return host;
  const total = budget.limit;
  // The budget cannot give what the host does not have.
  const available = Math.min(Math.max(0, total - budget.used), host.available);
  return { total, free: Math.min(available, host.free), available, buffers: 0, cached: 0 };
}
