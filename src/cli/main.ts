#!/usr/bin/env node
// moat: the docker-like user CLI. Every command is a thin layer over the library API.
import "../sys/threadpool.js";
import { readFileSync } from "node:fs";
import { DEFAULT_ROOT, ImageStore } from "../image/store.js";
import { isRuncInvocation, runcMain } from "../oci/cli.js";
import { MoatError } from "../spec/errors.js";
import { isLifecycleInvocation } from "./dispatch.js";
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

const USAGE = `moat: a secure container runtime (every sandbox gets its own kernel)

usage: moat [--root DIR] [--json] COMMAND [ARGS]

images:
  pull IMAGE              pull from a registry (--platform, --insecure, --creds user:pass)
  images                  list images: age (CREATED) and SIZE (compressed layers + config)
  rmi IMAGE...            remove images and the blobs and unpacked layers only they use
  load FILE|DIR           load an OCI layout (dir or tar) or a docker save archive (--name REF)
  save -o OUT IMAGE...    save images as an OCI layout tar (--dir for a directory)
  bundle IMAGE DIR [CMD]  write an OCI runtime bundle (--rootfs-mode overlay|copy); --remove DIR
  gc                      remove blobs and layers no image uses
sandboxes:
  run [--isolation vm|userkernel|auto] IMAGE [CMD...]
  run -d [--name NAME] IMAGE [CMD...]   detached: prints the id; output goes to its log
  exec [-i] [-t] [-d] [-e K=V] [-w DIR] [-u USER] CONTAINER CMD...   another process in it
  kill [-s SIGNAL] [--time SECONDS] CONTAINER...   TERM, then KILL after 10 s (or just -s)
  ps [-a] [-q]            running containers (-a: stopped ones too)
      [--format json|table|'{{.ID}}\t{{.Names}}\t{{.Status}}'] [--filter status=|name=|id=|label=|ancestor=]
  logs [-f] [--tail N] CONTAINER   its stdout on stdout, its stderr on stderr (-f: follow until it stops)
  stop [-t SECONDS] [-s SIGNAL] CONTAINER...   its stop signal, then KILL after 10 s (--stop-timeout)
  start [-a] CONTAINER... a stopped container again, from its bundle (-a: attach to its output)
  restart [-t SECONDS] CONTAINER...   stop, then start
  wait CONTAINER...       wait for each to stop; print its exit status
  inspect CONTAINER...    a JSON array in docker's shape (State, Config, HostConfig, Mounts)
  stats [--no-stream] [CONTAINER...]   CPU %, memory, PIDs (a live table, or JSON lines when piped)
  top CONTAINER [PS-OPTIONS]   its processes (ps in the container)
  port CONTAINER [PORT]   its -p forwards
  cp CONTAINER:PATH HOSTPATH, cp HOSTPATH CONTAINER:PATH   copy files (a running container; tar in it)
  pause|unpause CONTAINER...   freeze and thaw it (vm only: the userkernel cannot hold a stopped process)
  rm [-f] CONTAINER...    remove stopped containers and what they made (-f: kill first)
  (CONTAINER: its --name, its id, or the start of its id)
  (a foreground moat run is listed by ps and reached by kill too)
host:
  setup [--isolation X]   build the guest kernel and image, probe KVM (progress on a TTY)
  doctor                  what this host can run, and why not
  version

runc-compatible OCI runtime commands (create, start, state, kill, delete, list, ps, spec,
features, and run --bundle DIR ID): see "moat help runc". kill, exec and ps are moat's when
they name one of moat's containers (or none, for ps), else runc's.

The built-in image "default" (moat.local/busybox) is built from Debian's busybox-static.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

const COMMANDS: Record<string, (store: ImageStore, argv: string[], out: Output) => Promise<number>> = {
  pull: cmdPull,
  images: cmdImages,
  rmi: cmdRmi,
  load: cmdLoad,
  save: cmdSave,
  bundle: cmdBundle,
  gc: cmdGc,
  run: cmdRun,
  exec: cmdExec,
  kill: cmdKill,
  ps: cmdPs,
  logs: cmdLogs,
  rm: cmdRm,
  stop: cmdStop,
  start: cmdStart,
  restart: cmdRestart,
  wait: cmdWait,
  inspect: cmdInspect,
  stats: cmdStats,
  top: cmdTop,
  port: cmdPort,
  pause: cmdPause,
  unpause: cmdUnpause,
  cp: cmdCp,
  doctor: cmdDoctor,
  setup: cmdSetup,
};

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
    if (!command || command === "help" || command === "--help" || command === "-h") {
      process.stdout.write(USAGE);
      return command ? 0 : 2;
    }
    if (command === "version" || command === "--version") {
      out.result({ version: version() }, `moat version ${version()}`);
      return 0;
    }
    const fn = COMMANDS[command];
    if (!fn) throw new MoatError("EINVAL", `unknown command "${command}": run "moat help" for the list`);
    if (!root) throw new MoatError("EINVAL", "--root needs a directory");
    const store = await ImageStore.open(root);
    // What runs killed before they could clean up left behind (foreground.ts): never fails.
    await reapLeftovers(store);
    return await fn(store, rest, out);
  } catch (e) {
    return reportError(e, out.forced);
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
