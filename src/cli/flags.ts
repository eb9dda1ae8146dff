// The one description of every moat command's flags: the parser reads it, and so do the help
// text (`moat CMD --help`, `moat help CMD`) and the bash completion, so none can drift from
// the others. A command module exports a CommandSpec next to its function; main.ts lists them.
import { MoatError } from "../spec/errors.js";

export interface Flag {
  type: "string" | "boolean";
  short?: string;
  /** Repeatable: the values are collected in order. */
  multiple?: boolean;
  /** The value's placeholder in the help ("NAME[=VALUE]"). */
  value?: string;
  help: string;
  /** Values the completion offers. */
  choices?: readonly string[];
}

export type Flags = Record<string, Flag>;

type ValueOf<F extends Flag> = F["type"] extends "boolean"
  ? boolean
  : F["multiple"] extends true
    ? string[]
    : string;
export type Values<T extends Flags> = { [K in keyof T]?: ValueOf<T[K]> };

export interface CommandSpec<T extends Flags = Flags> {
  name: string;
  /** What follows the flags in the usage line: "IMAGE [CMD...]". */
  args: string;
  summary: string;
  group: "images" | "sandboxes" | "host";
  flags: T;
  /**
   * Positionals before the container's command: once that many are seen, the rest of the
   * line belongs to the container (`moat run IMAGE sh -c ...`). Absent: flags anywhere.
   */
  command?: number;
  /** Fewest arguments (the container's command counted) and most positionals (not counted). */
  min?: number;
  max?: number;
  /** A longer explanation after the flags in --help. */
  details?: string;
}

/** -h or --help was given: main prints the command's help and exits 0. */
export class HelpRequested extends Error {
  constructor(readonly spec: CommandSpec) {
    super(`help for ${spec.name}`);
  }
}

function usageError(spec: CommandSpec, what: string): MoatError {
  return new MoatError("EINVAL", `moat ${spec.name}: ${what}; see moat ${spec.name} --help`);
}

export interface Parsed<T extends Flags> {
  values: Values<T>;
  positionals: string[];
  command: string[];
}

/** Parse a command's arguments by its spec: clean errors, -h/--help anywhere among the flags. */
export function parseCommand<T extends Flags>(spec: CommandSpec<T>, argv: string[]): Parsed<T> {
  const values: Record<string, string | string[] | boolean> = {};
  const positionals: string[] = [];
  const fixed = spec.command ?? Number.POSITIVE_INFINITY;
  const byShort = new Map<string, string>();
  for (const [name, f] of Object.entries(spec.flags)) if (f.short) byShort.set(f.short, name);
  const set = (name: string, value: string | boolean) => {
    const f = spec.flags[name]!;
    if (f.multiple && typeof value === "string") {
      const list = (values[name] as string[] | undefined) ?? [];
      list.push(value);
      values[name] = list;
    } else values[name] = value;
  };
  let i = 0;
  let command: string[] = [];
  for (; i < argv.length; i++) {
    if (positionals.length >= fixed) break;
    const a = argv[i]!;
    if (a === "--") {
      const rest = argv.slice(i + 1);
      const room = fixed === Number.POSITIVE_INFINITY ? rest.length : fixed - positionals.length;
      positionals.push(...rest.slice(0, room));
      command = rest.slice(room);
      i = argv.length;
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      positionals.push(a);
      continue;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      if (name === "help" && !spec.flags.help) throw new HelpRequested(spec as CommandSpec);
      const f = spec.flags[name];
      if (!f) throw usageError(spec, `unknown flag --${name}`);
      if (f.type === "boolean") {
        if (eq < 0) set(name, true);
        else {
          const v = a.slice(eq + 1);
          if (v !== "true" && v !== "false") throw usageError(spec, `--${name} takes no value`);
          set(name, v === "true");
        }
      } else if (eq >= 0) set(name, a.slice(eq + 1));
      else {
        if (i + 1 >= argv.length) throw usageError(spec, `--${name} needs a value (${f.value ?? "VALUE"})`);
        set(name, argv[++i]!);
      }
      continue;
    }
    // Short flags: -i, -it (booleans together), -e K=V, -eK=V, -dp 80:80.
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      const name = byShort.get(c);
      if (!name) {
        if (c === "h") throw new HelpRequested(spec as CommandSpec);
        throw usageError(spec, `unknown flag -${c}`);
      }
      const f = spec.flags[name]!;
      if (f.type === "boolean") {
        set(name, true);
        continue;
      }
      const inline = a.slice(j + 1);
      if (inline) set(name, inline.startsWith("=") ? inline.slice(1) : inline);
      else {
        if (i + 1 >= argv.length) throw usageError(spec, `-${c} needs a value (${f.value ?? "VALUE"})`);
        set(name, argv[++i]!);
      }
      break;
    }
  }
  if (i < argv.length) command = argv.slice(i);
  // A "--" right after the fixed positionals separates the container's command.
  if (command[0] === "--" && fixed !== Number.POSITIVE_INFINITY) command = command.slice(1);
  if (spec.min !== undefined && positionals.length + command.length < spec.min) {
    throw usageError(
      spec,
      `requires at least ${spec.min} argument${spec.min === 1 ? "" : "s"} (${spec.args})`,
    );
  }
  if (spec.max !== undefined && positionals.length > spec.max) {
    throw usageError(
      spec,
      spec.max === 0
        ? `takes no arguments, not "${positionals[0]}"`
        : `takes at most ${spec.max} argument${spec.max === 1 ? "" : "s"} (${spec.args})`,
    );
  }
  return { values: values as Values<T>, positionals, command };
}

function flagLabel(name: string, f: Flag): string {
  const long = `--${name}${f.type === "string" ? ` ${f.value ?? "VALUE"}` : ""}`;
  return f.short ? `-${f.short}, ${long}` : `    ${long}`;
}

/** `moat CMD --help`: the usage line, the summary and every flag of the table. */
export function helpText(spec: CommandSpec): string {
  const flags = Object.entries(spec.flags);
  const labels = flags.map(([n, f]) => flagLabel(n, f));
  const width = Math.min(34, Math.max(14, ...labels.map((l) => l.length)));
  const lines = [
    `usage: moat ${spec.name}${flags.length ? " [OPTIONS]" : ""}${spec.args ? ` ${spec.args}` : ""}`,
    "",
    spec.summary,
    "",
    "options:",
  ];
  flags.forEach(([, f], k) => {
    const label = labels[k]!;
    const help = `${f.help}${f.multiple ? " (repeatable)" : ""}`;
    lines.push(
      label.length > width
        ? `  ${label}\n  ${"".padEnd(width)}  ${help}`
        : `  ${label.padEnd(width)}  ${help}`,
    );
  });
  lines.push(`  ${"-h, --help".padEnd(width)}  this help`);
  if (spec.details) lines.push("", spec.details.trimEnd());
  return `${lines.join("\n")}\n`;
}

/** `moat help`: the commands by group, each with its summary's first sentence. */
export function mainUsage(specs: readonly CommandSpec[], tail: string): string {
  const groups: Record<CommandSpec["group"], string> = {
    images: "images",
    sandboxes: "sandboxes",
    host: "host",
  };
  const lines = [
    "moat: a secure container runtime (every sandbox gets its own kernel)",
    "",
    "usage: moat [--root DIR] [--json] [--debug] COMMAND [ARGS]",
    "       moat COMMAND --help (or moat help COMMAND) lists the command's flags",
  ];
  for (const [g, title] of Object.entries(groups)) {
    lines.push("", `${title}:`);
    for (const s of specs.filter((x) => x.group === g)) {
      const head = `${s.name}${s.args ? ` ${s.args}` : ""}`;
      const summary = s.summary.replace(/:.*$|\. .*$/s, "").replace(/\.$/, "");
      lines.push(
        head.length > 30 ? `  ${head}\n  ${"".padEnd(30)}  ${summary}` : `  ${head.padEnd(30)}  ${summary}`,
      );
      // Its flags by name, from the same table, wrapped under it.
      const names = Object.entries(s.flags).map(([n, f]) => (f.short ? `-${f.short}|--${n}` : `--${n}`));
      let line = "     ";
      for (const n of names) {
        if (line.length + n.length + 1 > 92) {
          lines.push(line);
          line = "     ";
        }
        line += ` ${n}`;
      }
      if (names.length) lines.push(line);
    }
  }
  return `${lines.join("\n")}\n\n${tail}`;
}
