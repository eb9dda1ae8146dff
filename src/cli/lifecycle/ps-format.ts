// `moat ps --format` and `--filter`: docker's field names, its `table`/`json` words and a
// Go-template-like `{{.Field}}` text; docker's filter keys. Pure functions of the container
// list, so the parsing is tested apart from the CLI too.
import type { ContainerInfo } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import { IMAGE_ANNOTATION, NAME_ANNOTATION, shortId } from "../containers.js";
import { dockerStatus, labelsOf, portsOf } from "./inspect-view.js";

export function ago(iso: string | undefined): string {
  if (!iso) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? "" : "s"}`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? "" : "s"}`;
  return `${Math.round(h / 24)} days`;
}

export function statusText(c: ContainerInfo): string {
  switch (c.status) {
    case "running":
      return `Up ${ago(c.created)}`;
    case "stopped":
      return c.exitStatus !== undefined
        ? `Exited (${c.exitStatus}) ${ago(c.exitedAt)} ago${c.oomKilled ? " (OOMKilled)" : ""}`
        : "Exited";
    default:
      return c.status[0]!.toUpperCase() + c.status.slice(1);
  }
}

/** A container with the command its bundle runs (read once per listing). */
export interface PsRow {
  info: ContainerInfo;
  command: string[];
  /** A foreground `moat run` (cli/foreground.ts) rather than a detached container. */
  foreground?: boolean;
}

/** docker ps's template fields, plus moat's Isolation and OOMKilled. */
export function psFields(r: PsRow): Record<string, string> {
  const c = r.info;
  let cmd = r.command.join(" ");
  if (cmd.length > 30) cmd = `${cmd.slice(0, 29)}…`;
  return {
    ID: shortId(c.id),
    Names: c.annotations[NAME_ANNOTATION] ?? "",
    Image: c.annotations[IMAGE_ANNOTATION] ?? "",
    Command: `"${cmd}"`,
    CreatedAt: c.created,
    RunningFor: `${ago(c.created)} ago`,
    Status: `${statusText(c)}${r.foreground ? " (foreground)" : ""}`,
    State: dockerStatus(c.status),
    Ports: portsOf(c.annotations)
      .map((p) => `127.0.0.1:${p.host}->${p.guest}/tcp`)
      .join(", "),
    Labels: Object.entries(labelsOf(c.annotations))
      .map(([k, v]) => `${k}=${v}`)
      .join(","),
    Isolation: c.isolation ?? "",
    OOMKilled: String(Boolean(c.oomKilled)),
  };
}

const FIELDS = Object.keys(
  psFields({ info: { id: "", annotations: {}, status: "stopped" } as unknown as ContainerInfo, command: [] }),
);

/** docker's column titles for the default table and `table {{.X}}` templates. */
const TITLES: Record<string, string> = {
  ID: "CONTAINER ID",
  Names: "NAMES",
  Image: "IMAGE",
  Command: "COMMAND",
  CreatedAt: "CREATED AT",
  RunningFor: "CREATED",
  Status: "STATUS",
  State: "STATE",
  Ports: "PORTS",
  Labels: "LABELS",
  Isolation: "ISOLATION",
  OOMKilled: "OOMKILLED",
};

export const DEFAULT_TABLE =
  "table {{.ID}}\t{{.Names}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Isolation}}";

export type Format =
  | { kind: "json" }
  | { kind: "table"; columns: string[] }
  | { kind: "template"; parts: string[] };

/**
 * Parse --format: "json", "table", "table TEMPLATE" or TEMPLATE, where TEMPLATE is text with
 * {{.Field}} (docker's names); `\t` and `\n` written as two characters mean tab and newline,
 * as docker takes them.
 */
export function parseFormat(text: string): Format {
  const t = text.trim();
  if (t === "json" || t === "{{json .}}") return { kind: "json" };
  if (t === "table") return parseFormat(DEFAULT_TABLE);
  const isTable = t.startsWith("table ");
  const body = (isTable ? t.slice(6) : text).replace(/\\t/g, "\t").replace(/\\n/g, "\n");
  // parts alternate: literal text, field name, literal text, ...
  const parts: string[] = [];
  let rest = body;
  for (;;) {
    const open = rest.indexOf("{{");
    if (open < 0) {
      parts.push(rest);
      break;
    }
    const close = rest.indexOf("}}", open);
    if (close < 0) throw new MoatError("EINVAL", `--format "${text}": a "{{" has no "}}"`);
    parts.push(rest.slice(0, open));
    const inner = rest.slice(open + 2, close).trim();
    const m = /^\.([A-Za-z]+)$/.exec(inner);
    if (!m) {
      throw new MoatError(
        "EINVAL",
        `--format "${text}": "{{${inner}}}" is not understood: moat takes {{.Field}} with one of ${FIELDS.join(", ")} (or the words json, table)`,
      );
    }
    if (!FIELDS.includes(m[1]!)) {
      throw new MoatError(
        "EINVAL",
        `--format: unknown field .${m[1]}: use one of ${FIELDS.map((f) => `.${f}`).join(", ")}`,
      );
    }
    parts.push(m[1]!);
    rest = rest.slice(close + 2);
  }
  if (!isTable) return { kind: "template", parts };
  // table: each tab-separated cell becomes a padded column, with docker's title.
  const columns = parts.filter((_, i) => i % 2 === 1);
  return { kind: "table", columns };
}

/** The lines --format prints for these rows. */
export function render(format: Format, rows: PsRow[]): string[] {
  if (format.kind === "json") {
    return rows.map((r) => JSON.stringify(psFields(r)));
  }
  if (format.kind === "template") {
    return rows.map((r) => {
      const f = psFields(r);
      return format.parts.map((p, i) => (i % 2 === 1 ? f[p]! : p)).join("");
    });
  }
  const table = [format.columns.map((c) => TITLES[c] ?? c.toUpperCase())];
  for (const r of rows) {
    const f = psFields(r);
    table.push(format.columns.map((c) => f[c]!));
  }
  const w = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  return table.map((r) =>
    r
      .map((v, i) => v.padEnd(w[i]!))
      .join("   ")
      .trimEnd(),
  );
}

const FILTER_KEYS = ["status", "name", "id", "label", "ancestor", "isolation"] as const;
const STATUSES = ["created", "restarting", "running", "removing", "paused", "exited", "dead"];

export type Filters = Map<(typeof FILTER_KEYS)[number], string[]>;

/** --filter KEY=VALUE, repeatable: one key's values are OR'ed, different keys AND'ed, as docker. */
export function parseFilters(list: string[]): Filters {
  const out: Filters = new Map();
  for (const f of list) {
    const eq = f.indexOf("=");
    const key = (eq < 0 ? f : f.slice(0, eq)) as (typeof FILTER_KEYS)[number];
    if (eq < 0 || !FILTER_KEYS.includes(key)) {
      throw new MoatError(
        "EINVAL",
        `--filter "${f}" is not a filter: use KEY=VALUE with KEY one of ${FILTER_KEYS.join(", ")}`,
      );
    }
    const value = f.slice(eq + 1);
    if (key === "status" && !STATUSES.includes(value)) {
      throw new MoatError("EINVAL", `--filter status=${value}: use one of ${STATUSES.join(", ")}`);
    }
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

function matches(key: string, value: string, c: ContainerInfo): boolean {
  switch (key) {
    case "status":
      return dockerStatus(c.status) === value;
    case "name":
      return (c.annotations[NAME_ANNOTATION] ?? "").includes(value);
    case "id":
      return c.id.startsWith(value);
    case "isolation":
      return c.isolation === value;
    case "ancestor":
      return c.annotations[IMAGE_ANNOTATION] === value;
    case "label": {
      const labels = labelsOf(c.annotations);
      const eq = value.indexOf("=");
      return eq < 0 ? value in labels : labels[value.slice(0, eq)] === value.slice(eq + 1);
    }
    default:
      return false;
  }
}

export function applyFilters(filters: Filters, list: ContainerInfo[]): ContainerInfo[] {
  return list.filter((c) => [...filters].every(([k, vs]) => vs.some((v) => matches(k, v, c))));
}
