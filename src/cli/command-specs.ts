// The flag tables of moat's image, lifecycle and host commands (run's is in run-options.ts).
// Each command parses its arguments with its table (parseCommand), main.ts prints its help
// from it and the bash completion lists its flags from it. A new command adds its spec here
// (or exports one from its own module) and lists it in main.ts's COMMANDS.
import type { CommandSpec } from "./flags.js";

export const PULL = {
  name: "pull",
  args: "IMAGE",
  summary: "Pull an image from a registry into the store.",
  group: "images",
  min: 1,
  max: 1,
  flags: {
    platform: { type: "string", value: "OS/ARCH", help: "the platform to take from a multi-platform image" },
    insecure: { type: "boolean", help: "plain HTTP, or HTTPS without certificate checks" },
    creds: { type: "string", value: "USER:PASS", help: "registry credentials (or MOAT_REGISTRY_CREDS)" },
  },
} as const satisfies CommandSpec;

export const IMAGES = {
  name: "images",
  args: "",
  summary: "List the images in the store: age (CREATED) and SIZE (compressed layers + config).",
  group: "images",
  max: 0,
  flags: {},
} as const satisfies CommandSpec;

export const RMI = {
  name: "rmi",
  args: "IMAGE...",
  summary: "Remove images and the blobs and unpacked layers only they use.",
  group: "images",
  min: 1,
  flags: {},
} as const satisfies CommandSpec;

export const LOAD = {
  name: "load",
  args: "FILE.tar|LAYOUT-DIR",
  summary: "Load an OCI layout (directory or tar) or a docker save archive.",
  group: "images",
  max: 1,
  flags: {
    input: { type: "string", short: "i", value: "FILE", help: "the archive or layout to load" },
    name: { type: "string", value: "REF", help: "the name to give the loaded image" },
    platform: {
      type: "string",
      value: "OS/ARCH",
      help: "the platform to take from a multi-platform archive",
    },
  },
} as const satisfies CommandSpec;

export const SAVE = {
  name: "save",
  args: "IMAGE...",
  summary: "Save images as an OCI layout tar (or directory).",
  group: "images",
  min: 1,
  flags: {
    output: {
      type: "string",
      short: "o",
      value: "OUT",
      help: "the tar file (or directory, with --dir) to write",
    },
    dir: { type: "boolean", help: "write an OCI layout directory instead of a tar" },
  },
} as const satisfies CommandSpec;

export const BUNDLE = {
  name: "bundle",
  args: "IMAGE DIR [CMD...] | --remove DIR",
  summary: "Write an OCI runtime bundle (config.json, rootfs) from an image, or remove one.",
  group: "images",
  command: 2,
  flags: {
    remove: { type: "boolean", help: "unmount and remove a bundle made by moat bundle" },
    "rootfs-mode": {
      type: "string",
      value: "MODE",
      choices: ["overlay", "copy", "auto"],
      help: "overlay (the layers mounted, writes kept apart) or copy",
    },
    user: { type: "string", short: "u", value: "USER[:GROUP]", help: "the user to run as" },
    workdir: { type: "string", short: "w", value: "DIR", help: "the working directory" },
    env: { type: "string", short: "e", multiple: true, value: "NAME=VALUE", help: "an environment variable" },
    tty: { type: "boolean", short: "t", help: "the process gets a terminal" },
    hostname: { type: "string", value: "NAME", help: "the container's host name" },
  },
} as const satisfies CommandSpec;

export const GC = {
  name: "gc",
  args: "",
  summary: "Remove the blobs and unpacked layers no image uses.",
  group: "images",
  max: 0,
  flags: {},
} as const satisfies CommandSpec;

export const EXEC = {
  name: "exec",
  args: "CONTAINER CMD...",
  summary: "Run another process in a running container.",
  group: "sandboxes",
  command: 1,
  min: 2,
  flags: {
    interactive: { type: "boolean", short: "i", help: "keep stdin open: the process reads it" },
    tty: { type: "boolean", short: "t", help: "give the process a terminal" },
    detach: { type: "boolean", short: "d", help: "start it and return at once" },
    env: {
      type: "string",
      short: "e",
      multiple: true,
      value: "NAME[=VALUE]",
      help: "an environment variable",
    },
    workdir: { type: "string", short: "w", value: "DIR", help: "its working directory" },
    user: { type: "string", short: "u", value: "USER[:GROUP]", help: "the user it runs as" },
  },
} as const satisfies CommandSpec;

export const KILL = {
  name: "kill",
  args: "CONTAINER...",
  summary: "Stop containers: TERM (or the container's stop signal), then KILL after the grace period.",
  group: "sandboxes",
  min: 1,
  flags: {
    signal: { type: "string", short: "s", value: "SIGNAL", help: "send just this signal (name or number)" },
    time: { type: "string", short: "t", value: "SECONDS", help: "grace period before KILL (default 10)" },
  },
} as const satisfies CommandSpec;

export const PS = {
  name: "ps",
  args: "",
  summary: "List running containers.",
  group: "sandboxes",
  max: 0,
  flags: {
    all: { type: "boolean", short: "a", help: "stopped containers too" },
    quiet: { type: "boolean", short: "q", help: "ids only" },
    json: { type: "boolean", help: "one JSON object per line" },
    format: {
      type: "string",
      value: "json|table|TEMPLATE",
      help: "docker's formats: json, table, or a template of {{.ID}}, {{.Names}}, {{.Status}}, ...",
    },
    filter: {
      type: "string",
      short: "f",
      multiple: true,
      value: "KEY=VALUE",
      help: "status=, name=, id=, label=, ancestor=, isolation= (repeatable)",
    },
  },
} as const satisfies CommandSpec;

export const LOGS = {
  name: "logs",
  args: "CONTAINER",
  summary: "Print a detached container's output.",
  group: "sandboxes",
  min: 1,
  max: 1,
  flags: {
    follow: { type: "boolean", short: "f", help: "keep printing until the container stops" },
    tail: { type: "string", short: "n", value: "N|all", help: "only the last N lines of each stream" },
    timestamps: { type: "boolean", short: "t", help: "refused: moat's logs keep no timestamps yet" },
  },
} as const satisfies CommandSpec;

export const RM = {
  name: "rm",
  args: "CONTAINER...",
  summary: "Remove stopped containers and everything they made.",
  group: "sandboxes",
  min: 1,
  flags: {
    force: { type: "boolean", short: "f", help: "kill running ones first" },
  },
} as const satisfies CommandSpec;

const STOP_FLAGS = {
  time: {
    type: "string",
    short: "t",
    value: "SECONDS",
    help: "grace period before KILL (default: --stop-timeout, else 10)",
  },
  signal: {
    type: "string",
    short: "s",
    value: "SIGNAL",
    help: "the first signal (default: --stop-signal, the image's, else TERM)",
  },
} as const;

export const STOP = {
  name: "stop",
  args: "CONTAINER...",
  summary: "Stop containers: the stop signal, then KILL after the grace period.",
  group: "sandboxes",
  min: 1,
  flags: STOP_FLAGS,
} as const satisfies CommandSpec;

export const RESTART = {
  name: "restart",
  args: "CONTAINER...",
  summary: "Stop containers, then start them again from their bundles.",
  group: "sandboxes",
  min: 1,
  flags: STOP_FLAGS,
} as const satisfies CommandSpec;

export const START = {
  name: "start",
  args: "CONTAINER...",
  summary: "Run stopped containers again, from their kept bundles.",
  group: "sandboxes",
  min: 1,
  flags: { attach: { type: "boolean", short: "a", help: "follow its output and exit with its status" } },
} as const satisfies CommandSpec;

export const WAIT = {
  name: "wait",
  args: "CONTAINER...",
  summary: "Wait for containers to stop; print each one's exit status.",
  group: "sandboxes",
  min: 1,
  flags: {},
} as const satisfies CommandSpec;

export const INSPECT = {
  name: "inspect",
  args: "CONTAINER...",
  summary: "Print containers as a JSON array in docker's shape (State, Config, HostConfig, Mounts).",
  group: "sandboxes",
  min: 1,
  flags: {},
} as const satisfies CommandSpec;

export const STATS = {
  name: "stats",
  args: "[CONTAINER...]",
  summary: "CPU %, memory and PIDs of running containers: a live table, or JSON lines when piped.",
  group: "sandboxes",
  flags: { "no-stream": { type: "boolean", help: "print once and exit" } },
} as const satisfies CommandSpec;

export const TOP = {
  name: "top",
  args: "CONTAINER [PS-OPTIONS]",
  summary: "A container's processes (ps in the container).",
  group: "sandboxes",
  command: 1,
  min: 1,
  flags: {},
} as const satisfies CommandSpec;

export const PORT = {
  name: "port",
  args: "CONTAINER [PORT[/tcp]]",
  summary: "A container's -p forwards.",
  group: "sandboxes",
  min: 1,
  max: 2,
  flags: {},
} as const satisfies CommandSpec;

export const CP = {
  name: "cp",
  args: "CONTAINER:PATH HOSTPATH | HOSTPATH CONTAINER:PATH",
  summary: "Copy files out of or into a running container (tar in the container).",
  group: "sandboxes",
  min: 2,
  max: 2,
  flags: {},
} as const satisfies CommandSpec;

export const PAUSE = {
  name: "pause",
  args: "CONTAINER...",
  summary: "Freeze containers (vm only: the userkernel cannot hold a stopped process yet).",
  group: "sandboxes",
  min: 1,
  flags: {},
} as const satisfies CommandSpec;

export const UNPAUSE = {
  name: "unpause",
  args: "CONTAINER...",
  summary: "Thaw paused containers.",
  group: "sandboxes",
  min: 1,
  flags: {},
} as const satisfies CommandSpec;

export const SETUP = {
  name: "setup",
  args: "",
  summary: "Build the guest kernel and image and probe KVM: the one-time work the isolations need.",
  group: "host",
  max: 0,
  flags: {
    isolation: {
      type: "string",
      value: "NAME",
      choices: ["vm", "userkernel"],
      help: "prepare only this isolation",
    },
  },
} as const satisfies CommandSpec;

export const DOCTOR = {
  name: "doctor",
  args: "",
  summary: "Say what this host can run, and why not.",
  group: "host",
  max: 0,
  flags: {},
} as const satisfies CommandSpec;

export const VERSION = {
  name: "version",
  args: "",
  summary: "Print moat's version.",
  group: "host",
  max: 0,
  flags: {},
} as const satisfies CommandSpec;

export const COMPLETION = {
  name: "completion",
  args: "bash",
  summary: "Print a bash completion script: source it, or install it as bash-completion's moat file.",
  group: "host",
  min: 1,
  max: 1,
  flags: {},
} as const satisfies CommandSpec;

export const HELP = {
  name: "help",
  args: "[COMMAND]",
  summary: "Print moat's usage, or a command's flags.",
  group: "host",
  max: 1,
  flags: {},
} as const satisfies CommandSpec;
