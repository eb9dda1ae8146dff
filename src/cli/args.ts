// The old entry point of the commands' parser, kept for callers that pass a bare options
// table: prefer parseCommand(SPEC, argv) with a CommandSpec (flags.ts), whose table also
// gives the command its --help and completion.
import { type CommandSpec, type Flag, type Flags, type Parsed, parseCommand } from "./flags.js";

export function parseWithCommand<O extends Record<string, Omit<Flag, "help"> & { help?: string }>>(
  argv: string[],
  options: O,
  fixed: number,
  name = "command",
): Parsed<{ [K in keyof O]: O[K] & { help: string } }> {
  const flags: Flags = {};
  for (const [k, f] of Object.entries(options)) flags[k] = { help: "", ...f };
  const spec: CommandSpec = { name, args: "", summary: "", group: "sandboxes", flags };
  if (fixed !== Number.POSITIVE_INFINITY) spec.command = fixed;
  return parseCommand(spec, argv) as Parsed<{ [K in keyof O]: O[K] & { help: string } }>;
}
