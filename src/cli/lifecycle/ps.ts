// `moat ps`: moat's containers, as a table, JSON lines, or --format; --filter as docker's.
import * as fs from "node:fs";
import type { ImageStore } from "../../image/store.js";
import { type ContainerInfo, listContainers } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import type { Spec } from "../../spec/runtime.js";
import { PS } from "../command-specs.js";
import { IMAGE_ANNOTATION, NAME_ANNOTATION, shortId, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import { foregroundInfo, foregroundJson, listForeground } from "../foreground.js";
import type { Output } from "../output.js";
import { applyFilters, DEFAULT_TABLE, type PsRow, parseFilters, parseFormat, render } from "./ps-format.js";

export const PS_USAGE =
  "usage: moat ps [-a] [-q] [--json] [--format json|table|TEMPLATE] [--filter KEY=VALUE]... (it takes no container)";
export const PS_FLAGS = {
  all: { type: "boolean", short: "a" },
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
  format: { type: "string" },
  filter: { type: "string", short: "f", multiple: true },
} as const;

function commandOf(c: ContainerInfo): string[] {
  try {
    const spec = JSON.parse(fs.readFileSync(`${c.bundle}/config.json`, "utf8")) as Spec;
    return spec.process?.args ?? [];
  } catch {
    return [];
  }
}

export async function cmdPs(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(PS, argv);
  if (positionals.length > 0) throw new MoatError("EINVAL", PS_USAGE);
  const format = values.format !== undefined ? parseFormat(values.format) : undefined;
  const filters = parseFilters(values.filter ?? []);
  const json = out.json || Boolean(values.json);
  // As docker: a status filter looks at stopped containers too.
  const all = values.all || filters.has("status");
  const list = applyFilters(
    filters,
    (await listContainers(stateRoot(store.root))).filter((c) => all || c.status !== "stopped"),
  ).sort((a, b) => b.created.localeCompare(a.created));
  // Foreground runs (their moat owns them: cli/foreground.ts) first, as the newest.
  const foreground = listForeground(store.root).filter(
    (f) => applyFilters(filters, [foregroundInfo(f)]).length > 0 && (all || f.status !== "exited"),
  );
  if (values.quiet) {
    for (const c of [...foreground, ...list])
      process.stdout.write(`${json && !format ? c.id : shortId(c.id)}\n`);
    return 0;
  }
  const rows: PsRow[] = [
    ...foreground.map((f) => ({ info: foregroundInfo(f), command: f.command, foreground: true })),
    ...list.map((info) => ({ info, command: commandOf(info) })),
  ];
  if (format) {
    for (const line of render(format, rows)) process.stdout.write(`${line}\n`);
    return 0;
  }
  if (json) {
    for (const f of foreground) process.stdout.write(`${JSON.stringify(foregroundJson(f))}\n`);
    for (const { info: c, command, foreground: fg } of rows) {
      if (fg) continue;
      process.stdout.write(
        `${JSON.stringify({
          id: c.id,
          name: c.annotations[NAME_ANNOTATION] || undefined,
          image: c.annotations[IMAGE_ANNOTATION],
          command,
          created: c.created,
          status: c.status,
          ...(c.exitStatus !== undefined ? { exitStatus: c.exitStatus, exitedAt: c.exitedAt } : {}),
          ...(c.status === "stopped" ? { oomKilled: Boolean(c.oomKilled) } : {}),
          isolation: c.isolation,
          pid: c.status === "stopped" ? undefined : c.monitorPid,
        })}\n`,
      );
    }
    return 0;
  }
  for (const line of render(parseFormat(DEFAULT_TABLE), rows)) process.stdout.write(`${line}\n`);
  return 0;
}
