// Commands like `moat run IMAGE CMD...` take moat's options only before the command: once the
// fixed positionals are seen, everything after belongs to the container (`sh -c '...'`).
import { type ParseArgsConfig, parseArgs } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseWithCommand<O extends Options>(
  argv: string[],
  options: O,
  fixed: number,
): {
  values: ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true }>>["values"];
  positionals: string[];
  command: string[];
} {
  let seen = 0;
  let i = 0;
  for (; i < argv.length && seen < fixed; i++) {
    const a = argv[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (a.startsWith("-") && a !== "-") {
      const name = a.startsWith("--") ? a.slice(2).split("=")[0]! : undefined;
      const opt =
        name !== undefined ? options[name] : Object.values(options).find((o) => o.short === a.slice(1, 2));
      if (opt?.type === "string" && !a.includes("=") && !(a.length > 2 && !a.startsWith("--"))) i++;
      continue;
    }
    seen++;
  }
  // A "--" right after the fixed positionals is a separator, not part of the command.
  if (argv[i] === "--") i++;
  const { values, positionals } = parseArgs({
    args: argv.slice(0, i),
    options,
    allowPositionals: true,
    strict: true,
  });
  return { values, positionals: positionals.filter((p) => p !== "--"), command: argv.slice(i) };
}
