#!/usr/bin/env -S node --
// moat: the docker-like user CLI. Every command is a thin layer over the library API.
import "../sys/threadpool.js";
import { readFileSync } from "node:fs";
import { DEFAULT_ROOT, ImageStore } from "../image/store.js";
import { isRuncInvocation, runcMain } from "../oci/cli.js";
import { MoatError } from "../spec/errors.js";
import {
  BUNDLE,
  COMPLETION,
  CP,
  DOCTOR,
  EXEC,
  GC,
  HELP,
  IMAGES,
  INSPECT,
  KILL,
  LOAD,
  LOGS,
  PAUSE,
  PORT,
  PS,
  PULL,
  RESTART,
  RM,
  RMI,
  SAVE,
  SETUP,
  START,
  STATS,
  STOP,
  TOP,
  UNPAUSE,
  VERSION,
  WAIT,
} from "./command-specs.js";
import { bashCompletion } from "./completion.js";
import { isLifecycleInvocation } from "./dispatch.js";
import { type CommandSpec, HelpRequested, helpText, mainUsage, parseCommand } from "./flags.js";
import { reapLeftovers, reapQuietly } from "./foreground.js";
import { cmdDoctor, cmdSetup } from "./host-commands.js";
import { cmdBundle, cmdGc, cmdImages, cmdLoad, cmdPull, cmdRmi, cmdSave } from "./image-commands.js";
import {
  cmdCp,
  cmdExec,
  cmdInspect,
  cmdKill,
  cmdLogs,
  cmdPause,
  cmdPort,
  cmdPs,
  cmdRestart,
  cmdRm,
  cmdStart,
  cmdStats,
  cmdStop,
  cmdTop,
  cmdUnpause,
  cmdWait,
} from "./lifecycle.js";
import { makeOutput, type Output, reportError } from "./output.js";
import { cmdRun } from "./run.js";
import { RUN } from "./run-options.js";

interface Command {
  spec: CommandSpec;
  /** Absent for the commands main.ts answers itself (help, version, completion). */
  run?: (store: ImageStore, argv: string[], out: Output) => Promise<number>;
}

/** Every command, with the spec its help, its flag checks and the completion come from. */
const COMMANDS: Command[] = [
  { spec: PULL, run: cmdPull },
  { spec: IMAGES, run: cmdImages },
  { spec: RMI, run: cmdRmi },
  { spec: LOAD, run: cmdLoad },
  { spec: SAVE, run: cmdSave },
  { spec: BUNDLE, run: cmdBundle },
  { spec: GC, run: cmdGc },
  { spec: RUN, run: cmdRun },
  { spec: EXEC, run: cmdExec },
  { spec: KILL, run: cmdKill },
  { spec: PS, run: cmdPs },
  { spec: LOGS, run: cmdLogs },
  { spec: STOP, run: cmdStop },
  { spec: START, run: cmdStart },
  { spec: RESTART, run: cmdRestart },
  { spec: WAIT, run: cmdWait },
  { spec: INSPECT, run: cmdInspect },
  { spec: STATS, run: cmdStats },
  { spec: TOP, run: cmdTop },
  { spec: PORT, run: cmdPort },
  { spec: CP, run: cmdCp },
  { spec: PAUSE, run: cmdPause },
  { spec: UNPAUSE, run: cmdUnpause },
  { spec: RM, run: cmdRm },
  { spec: SETUP, run: cmdSetup },
  { spec: DOCTOR, run: cmdDoctor },
  { spec: VERSION },
  { spec: COMPLETION },
  { spec: HELP },
];

const usage = () =>
  mainUsage(
    COMMANDS.map((c) => c.spec),
    `(CONTAINER: its --name, its id, or the start of its id; a foreground moat run is listed by
ps and reached by kill too)

runc-compatible OCI runtime commands (create, start, state, kill, delete, list, ps, spec,
features, and run --bundle DIR ID): see "moat help runc". kill, exec and ps are moat's when
they name one of moat's containers (or none, for ps), else runc's.

The built-in image "default" (moat.local/busybox) is built from Debian's busybox-static.
Exit status: the container's; 125 when moat itself fails (usage, flags, images, hosts),
126 when the command cannot be run, 127 when it is not found, 128+N for a death by signal N.
`,
  );

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  // A reader that went away (`moat pull --json | head`) must not crash a pull half-way:
  // stop writing and let the work finish, so the store is left consistent.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
  });
  // runc's commands and flags (podman --runtime, conmon): the rule is in src/oci/cli.ts, after
  // moat's own commands of the same names are told apart (dispatch.ts).
  if (!isLifecycleInvocation(argv) && isRuncInvocation(argv)) {
    // The default store's dead foreground runs too (one readdir when there are none).
    reapQuietly(process.env.MOAT_ROOT ?? DEFAULT_ROOT);
    return runcMain(argv);
  }
  // Global flags come before the command, as with runc and docker.
  let root = process.env.MOAT_ROOT ?? DEFAULT_ROOT;
  let json = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--root") root = argv[++i] ?? "";
    else if (a.startsWith("--root=")) root = a.slice(7);
    else if (a === "--json") json = true;
    else if (a === "--debug") process.env.MOAT_DEBUG = "1";
    else break;
  }
  const [command, ...rest] = argv.slice(i);
  const out = makeOutput(json);
  try {
    if (!command || command === "--help" || command === "-h") {
      process.stdout.write(usage());
      return command ? 0 : 2;
    }
    const name = command === "--version" ? "version" : command;
    const cmd = COMMANDS.find((c) => c.spec.name === name);
    if (!cmd) throw new MoatError("EINVAL", `unknown command "${command}": run "moat help" for the list`);
    // The command's table checks its flags (and answers --help) before anything is opened.
    const { positionals } = parseCommand(cmd.spec, rest);
    switch (cmd.spec.name) {
      case "help": {
        const topic = positionals[0];
        if (topic === undefined) process.stdout.write(usage());
        else {
          const c = COMMANDS.find((x) => x.spec.name === topic);
          if (!c) throw new MoatError("EINVAL", `unknown command "${topic}": run "moat help" for the list`);
          process.stdout.write(helpText(c.spec));
        }
        return 0;
      }
      case "version":
        out.result({ version: version() }, `moat version ${version()}`);
        return 0;
      case "completion":
        if (positionals[0] !== "bash")
          throw new MoatError("EINVAL", `moat completion: only bash is supported, not "${positionals[0]}"`);
        process.stdout.write(bashCompletion(COMMANDS.map((c) => c.spec)));
        return 0;
    }
    if (!root) throw new MoatError("EINVAL", "--root needs a directory");
    const store = await ImageStore.open(root);
    // What runs killed before they could clean up left behind (foreground.ts): never fails.
    await reapLeftovers(store);
    return await cmd.run!(store, rest, out);
  } catch (e) {
    if (e instanceof HelpRequested) {
      process.stdout.write(helpText(e.spec));
      return 0;
    }
    return reportError(e, out.forced);
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
