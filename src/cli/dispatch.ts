// moat's own `run -d`, `exec`, `kill` and `ps` share their names with runc's commands (which
// podman and conmon call): tell them apart here, before src/oci's rule (isRuncInvocation) sees
// the command line. runc callers always pass --root and runc's own argument shapes, so:
//   ps:        moat's when it names no container (`moat ps -a`); runc's `ps ID` names one.
//   run:       moat's unless a runc flag (--bundle/-b, --pid-file, --console-socket) comes
//              before the image; `-d` alone is moat's detached run.
//   kill/exec/start/pause: moat's with no container (its usage error), with a flag only moat
//              has (kill -s/--time, exec -i/-w, start -a), or when the
//              container is one of moat's (a name or id under ROOT/containers), or when it
//              is no runc container and the root is moat's (no --root, or one holding
//              images/ or containers/), so a typo gets moat's error. Otherwise runc's.
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_ROOT } from "../image/store.js";
import { DEFAULT_STATE_ROOT } from "../oci/api.js";
import { EXEC, KILL, PS } from "./command-specs.js";
import { isOwnContainer } from "./containers.js";
import type { Flags } from "./flags.js";
import { RUN } from "./run-options.js";

/** A table's flags that take a value, as they are typed (--name and -n). */
function valueFlags(flags: Flags): string[] {
  return Object.entries(flags)
    .filter(([, f]) => f.type === "string")
    .flatMap(([n, f]) => [`--${n}`, ...(f.short ? [`-${f.short}`] : [])]);
}

/** Options that take a value, per command (both moat's, from their tables, and runc's), to find the first positional. */
const VALUE_OPTIONS: Record<string, Set<string>> = {
  ps: new Set(valueFlags(PS.flags)),
  kill: new Set(valueFlags(KILL.flags)),
  exec: new Set([
    ...valueFlags(EXEC.flags),
    "--cwd",
    "-p",
    "--process",
    "--pid-file",
    "--console-socket",
    "--process-label",
    "--apparmor",
    "-c",
    "--cap",
    "--preserve-fds",
    "--cgroup",
  ]),
  run: new Set([
    ...valueFlags(RUN.flags),
    "-b",
    "--bundle",
    "--pid-file",
    "--console-socket",
    "--preserve-fds",
  ]),
};

const MOAT_ONLY: Record<string, RegExp> = {
  start: /^(-a|--attach)$/,
  pause: /^$/,
  kill: /^(-s|--signal|--time|-t)(=|$)|^-s./,
  exec: /^(-i|--interactive|-w|--workdir)(=|$)|^-[itd]*i[itd]*$|^-w./,
};
const RUNC_ONLY: Record<string, RegExp> = {
  start: /^$/,
  pause: /^$/,
  kill: /^(-a|--all)$/,
  exec: /^(-p|--process|--pid-file|--console-socket|--cwd|--process-label|--apparmor|-c|--cap|--no-new-privs|--preserve-fds|--cgroup|--ignore-paused)(=|$)/,
};
const RUNC_RUN_ONLY = /^(--bundle|-b|--pid-file|--console-socket)(=|$)/;

/** The options before the first positional, and that positional. */
function leading(cmd: string, args: string[]): { options: string[]; first?: string } {
  const takesValue = VALUE_OPTIONS[cmd] ?? new Set<string>();
  const options: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") return { options, ...(args[i + 1] !== undefined ? { first: args[i + 1]! } : {}) };
    if (!a.startsWith("-") || a === "-") return { options, first: a };
    options.push(a);
    if (takesValue.has(a)) i++;
  }
  return { options };
}

/** Is this command line one of moat's lifecycle commands rather than runc's? */
export function isLifecycleInvocation(argv: string[]): boolean {
  let root: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--root") root = argv[++i] ?? "";
    else if (a.startsWith("--root=")) root = a.slice(7);
    else if (a === "--json" || a === "--debug") continue;
    else if (a.startsWith("-"))
      return false; // runc's globals (--log, --systemd-cgroup, ...)
    else break;
  }
  const [cmd, ...args] = argv.slice(i);
  if (!cmd) return false;
  const { options, first } = leading(cmd, args);
  switch (cmd) {
    case "ps":
      return first === undefined;
    case "run":
      return !options.some((o) => RUNC_RUN_ONLY.test(o));
    case "start":
    case "pause":
    case "kill":
    case "exec": {
      if (options.some((o) => RUNC_ONLY[cmd]!.test(o))) return false;
      if (options.some((o) => MOAT_ONLY[cmd]!.test(o))) return true;
      // No container at all: moat's usage error (runc callers always name one).
      if (first === undefined) return true;
      const moatRoot = root ?? process.env.MOAT_ROOT ?? DEFAULT_ROOT;
      if (isOwnContainer(moatRoot, first)) return true;
      // Not a runc container either: let moat's command say so, when the root is moat's
      // (the default, or one holding moat's images or containers).
      if (/[/\0]/.test(first)) return false;
      if (fs.existsSync(path.join(root ?? DEFAULT_STATE_ROOT, first))) return false;
      return (
        root === undefined ||
        fs.existsSync(path.join(root, "containers")) ||
        fs.existsSync(path.join(root, "images"))
      );
    }
    default:
      return false;
  }
}
