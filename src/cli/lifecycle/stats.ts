// `moat stats`: CPU, memory and process counts of running containers, from Sandbox.stats
// through the OCI monitor. CPU % is CPU time over wall time between two samples a second
// apart (100% = one CPU, as docker). The memory limit is --memory's, else the host's, as docker.
// On a terminal it redraws a table every second (--no-stream: one table); piped, one JSON
// line per container per sample.
import * as os from "node:os";
import type { ImageStore } from "../../image/store.js";
import { type ContainerInfo, listContainers, SIZING_ANNOTATIONS, statsContainer } from "../../oci/api.js";
import type { ContainerStats } from "../../sandbox/types.js";
import { MoatError } from "../../spec/errors.js";
import { STATS } from "../command-specs.js";
import { NAME_ANNOTATION, resolveContainer, shortId, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import { humanSize, type Output } from "../output.js";

export const STATS_USAGE = "usage: moat stats [--no-stream] [CONTAINER...]";
export const STATS_FLAGS = { "no-stream": { type: "boolean" } } as const;
const INTERVAL_MS = 1000;

interface Sample {
  at: bigint;
  stats: ContainerStats;
}

async function sample(sroot: string, id: string): Promise<Sample | undefined> {
  try {
    return { stats: await statsContainer(sroot, id), at: process.hrtime.bigint() };
  } catch {
    return undefined; // stopped meanwhile
  }
}

function limitOf(c: ContainerInfo): number {
  const mib = Number(c.annotations[SIZING_ANNOTATIONS.memory] ?? 0);
  return mib > 0 ? mib * 1024 * 1024 : os.totalmem();
}

export async function cmdStats(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(STATS, argv);
  const sroot = stateRoot(store.root);
  const all = await listContainers(sroot);
  let targets: ContainerInfo[];
  if (positionals.length > 0) {
    targets = [];
    for (const text of positionals) {
      const id = await resolveContainer(store.root, text);
      const c = all.find((x) => x.id === id)!;
      if (c.status !== "running")
        throw new MoatError("ESTATE", `container ${text} is not running (${c.status})`);
      targets.push(c);
    }
  } else targets = all.filter((c) => c.status === "running");
  const stream = !values["no-stream"];
  const prev = new Map<string, Sample>();
  for (const c of targets) {
    const s = await sample(sroot, c.id);
    if (s) prev.set(c.id, s);
  }
  for (;;) {
    await new Promise((r) => setTimeout(r, INTERVAL_MS));
    const rows: Record<string, string | number>[] = [];
    for (const c of targets) {
      const before = prev.get(c.id);
      const now = before && (await sample(sroot, c.id));
      if (!before || !now) {
        prev.delete(c.id);
        continue;
      }
      prev.set(c.id, now);
      const wall = Number(now.at - before.at);
      const cpu = wall > 0 ? ((now.stats.cpuNanos - before.stats.cpuNanos) / wall) * 100 : 0;
      const limit = limitOf(c);
      rows.push({
        id: c.id,
        name: c.annotations[NAME_ANNOTATION] ?? "",
        cpuPercent: Math.max(0, Math.round(cpu * 100) / 100),
        memoryBytes: now.stats.memoryBytes,
        memoryLimitBytes: limit,
        memoryPercent: Math.round((now.stats.memoryBytes / limit) * 10000) / 100,
        pids: now.stats.pids,
      });
    }
    if (out.json) {
      for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
    } else {
      const table = [["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]];
      for (const r of rows) {
        table.push([
          shortId(String(r.id)),
          String(r.name),
          `${Number(r.cpuPercent).toFixed(2)}%`,
          `${humanSize(Number(r.memoryBytes))} / ${humanSize(Number(r.memoryLimitBytes))}`,
          `${Number(r.memoryPercent).toFixed(2)}%`,
          String(r.pids),
        ]);
      }
      const w = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
      const text = table
        .map((r) =>
          r
            .map((v, i) => v.padEnd(w[i]!))
            .join("   ")
            .trimEnd(),
        )
        .join("\n");
      // A terminal: redraw in place, as docker stats does.
      process.stdout.write(`${stream ? "\x1b[2J\x1b[H" : ""}${text}\n`);
    }
    if (!stream || prev.size === 0) return 0;
  }
}
