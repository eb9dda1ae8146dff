// `moat ps`: moat's containers, as a table or JSON lines.
import * as fs from "node:fs";
import type { ImageStore } from "../../image/store.js";
import { type ContainerInfo, listContainers } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import type { Spec } from "../../spec/runtime.js";
import { parseWithCommand } from "../args.js";
import { IMAGE_ANNOTATION, NAME_ANNOTATION, shortId, stateRoot } from "../containers.js";
import type { Output } from "../output.js";

function ago(iso: string | undefined): string {
  if (!iso) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? "" : "s"}`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? "" : "s"}`;
  return `${Math.round(h / 24)} days`;
}

function commandOf(c: ContainerInfo): string[] {
  try {
    const spec = JSON.parse(fs.readFileSync(`${c.bundle}/config.json`, "utf8")) as Spec;
    return spec.process?.args ?? [];
  } catch {
    return [];
  }
}

function statusText(c: ContainerInfo): string {
  switch (c.status) {
    case "running":
      return `Up ${ago(c.created)}`;
    case "stopped":
      return c.exitStatus !== undefined ? `Exited (${c.exitStatus}) ${ago(c.exitedAt)} ago` : "Exited";
    default:
      return c.status[0]!.toUpperCase() + c.status.slice(1);
  }
}

export async function cmdPs(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseWithCommand(
    argv,
    {
      all: { type: "boolean", short: "a" },
      quiet: { type: "boolean", short: "q" },
      json: { type: "boolean" },
    },
    Number.POSITIVE_INFINITY,
  );
  if (positionals.length > 0) {
    throw new MoatError("EINVAL", "usage: moat ps [-a] [-q] [--json] (it takes no container)");
  }
  const json = out.json || Boolean(values.json);
  const list = (await listContainers(stateRoot(store.root)))
    .filter((c) => values.all || c.status !== "stopped")
    .sort((a, b) => b.created.localeCompare(a.created));
  if (values.quiet) {
    for (const c of list) process.stdout.write(`${json ? c.id : shortId(c.id)}\n`);
    return 0;
  }
  if (json) {
    for (const c of list) {
      process.stdout.write(
        `${JSON.stringify({
          id: c.id,
          name: c.annotations[NAME_ANNOTATION] || undefined,
          image: c.annotations[IMAGE_ANNOTATION],
          command: commandOf(c),
          created: c.created,
          status: c.status,
          ...(c.exitStatus !== undefined ? { exitStatus: c.exitStatus, exitedAt: c.exitedAt } : {}),
          isolation: c.isolation,
          pid: c.status === "stopped" ? undefined : c.monitorPid,
        })}\n`,
      );
    }
    return 0;
  }
  const rows = [["CONTAINER ID", "NAME", "IMAGE", "COMMAND", "CREATED", "STATUS", "ISOLATION"]];
  for (const c of list) {
    let cmd = commandOf(c).join(" ");
    if (cmd.length > 30) cmd = `${cmd.slice(0, 29)}…`;
    rows.push([
      shortId(c.id),
      c.annotations[NAME_ANNOTATION] ?? "",
      c.annotations[IMAGE_ANNOTATION] ?? "",
      `"${cmd}"`,
      `${ago(c.created)} ago`,
      statusText(c),
      c.isolation ?? "",
    ]);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) {
    process.stdout.write(
      `${r
        .map((v, i) => v.padEnd(w[i]!))
        .join("   ")
        .trimEnd()}\n`,
    );
  }
  return 0;
}
