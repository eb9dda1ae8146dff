// moat run: image -> bundle -> sandbox -> one container, its stdio wired to this terminal,
// its exit status as ours. Everything it made is removed when it ends, however it ends.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { createBundle, readRunnableBundleSpec, removeBundle } from "../image/bundle.js";
import type { ImageStore } from "../image/store.js";
import { chooseIsolation, selectBackend } from "../isolation/index.js";
import { MoatError } from "../spec/errors.js";
import type { Spec } from "../spec/runtime.js";
import { bundleDir, newId } from "./containers.js";
import { parseCommand } from "./flags.js";
import { runForeground } from "./foreground.js";
import { imageName } from "./image-commands.js";
import { runDetached } from "./lifecycle.js";
import type { Output } from "./output.js";
import { makeVolumes, parseRun, RUN, refuseUnsupported } from "./run-options.js";

// The flags and their checks are in run-options.ts (one table for the parser and the help).
export { parseMemory, parseNetwork, parsePortForward } from "./run-options.js";

/** An OCI bundle given by path: its config.json as is, the command replaced if one is given. */
async function openBundle(
  dir: string,
  command: string[],
): Promise<{ dir: string; spec: Spec; rootfs: string }> {
  const spec = readRunnableBundleSpec(dir);
  if (command.length) spec.process.args = command;
  return { dir: path.resolve(dir), spec, rootfs: path.resolve(dir, spec.root.path) };
}

/**
 * Is the target a bundle directory rather than an image? A path-looking one (starting with
 * / or ., or naming a directory with a /) is a bundle, and must have a config.json.
 */
async function isBundleDir(text: string): Promise<boolean> {
  const looksLikePath = text.startsWith("/") || text.startsWith(".");
  let dir = false;
  try {
    dir = (await fs.stat(text)).isDirectory();
  } catch {}
  if (!looksLikePath && !(dir && text.includes("/"))) return false;
  if (!dir) {
    if (looksLikePath)
      throw new MoatError("ENOENT", `${text} does not exist: give an image name or an OCI bundle directory`);
    return false;
  }
  try {
    if ((await fs.stat(path.join(text, "config.json"))).isFile()) return true;
  } catch {}
  throw new MoatError(
    "EINVAL",
    `${text} is not an OCI bundle: it has no config.json (make one with moat bundle IMAGE DIR, or give an image name)`,
  );
}

/** The flags that shape the container: a bundle directory runs as its config.json says. */
const SPEC_FLAGS = Object.keys(RUN.flags).filter(
  (f) =>
    ![
      "isolation",
      "detach",
      "name",
      "interactive",
      "tty",
      "rm",
      "keep",
      "memory",
      "cpus",
      "network",
      "publish",
    ].includes(f),
);

function refuseBundleFlags(target: string, argv: string[]): void {
  const { values } = parseCommand(RUN, argv);
  const given = SPEC_FLAGS.filter((f) => values[f as keyof typeof values] !== undefined);
  if (given.length) {
    throw new MoatError(
      "EINVAL",
      `${target} is a bundle: it runs as its config.json says, so ${given.map((f) => `--${f}`).join(", ")} would be ignored; edit the config.json, or run an image`,
    );
  }
}

export async function cmdRun(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const plan = parseRun(argv, store.root);
  const { values, target, command, memoryMiB, cpus, network, ports } = plan;
  const isolation = chooseIsolation({ flag: values.isolation });
  // docker: -i with -t reads keys from a terminal; from a pipe it would wait for ever.
  if (values.tty && values.interactive && !process.stdin.isTTY) {
    throw new MoatError("EINVAL", "the input device is not a TTY: drop -t, or run it from a terminal");
  }
  const given = await isBundleDir(target);
  if (given) refuseBundleFlags(target, argv);
  // The isolation, resolved (auto picks one here): what it cannot honour is refused at once.
  const backend = await selectBackend(isolation);
  refuseUnsupported(plan, backend.isolation);
  makeVolumes(plan, store.root);
  if (values.detach) {
    // Detached: the container outlives this command, so everything it needs is on disk and
    // owned by its monitor (see lifecycle.ts); the options that only make sense while we
    // stay attached are refused rather than ignored.
    const refused = ([["keep", "--keep"]] as const).find(([k]) => values[k]);
    if (refused) throw new MoatError("EINVAL", `moat run -d does not take ${refused[1]}: drop it`);
    if (given) {
      throw new MoatError(
        "EINVAL",
        `moat run -d takes an image, not a bundle directory: for ${target} use the runc commands (moat create --bundle DIR ID, moat start ID)`,
      );
    }
    return runDetached(store, out, {
      imageText: target,
      image: await imageName(store, target),
      overrides: plan.bundle,
      isolation: backend.isolation,
      ...(values.name !== undefined ? { name: values.name } : {}),
      interactive: Boolean(values.interactive),
      ...(values.rm ? { autoRemove: true } : {}),
      ...(values.tty ? { tty: true } : {}),
      sizing: {
        ...(memoryMiB ? { memoryMiB } : {}),
        ...(cpus ? { cpus } : {}),
        ...(network ? { network } : {}),
        ...(ports.length ? { ports } : {}),
      },
    });
  }
  if (values.name !== undefined) {
    throw new MoatError("EINVAL", "--name names a detached container: add -d, or drop --name");
  }
  // The run's id is a container id (moat ps, moat kill take it); foreground.ts records, owns
  // and cleans up everything the run makes.
  const id = newId();
  return runForeground({
    store,
    backend,
    id,
    image: target,
    ...(given ? {} : { bundleDir: bundleDir(store.root, id) }),
    keepBundle: Boolean(values.keep),
    makeBundle: async (leaseId) =>
      given
        ? openBundle(target, command)
        : createBundle(store, await imageName(store, target), bundleDir(store.root, id), {
            ...plan.bundle,
            ...(leaseId ? { leaseId } : {}),
          }),
    removeBundle,
    sandbox: {
      ...(memoryMiB ? { memoryMiB } : {}),
      ...(cpus ? { cpus } : {}),
      ...(network ? { network } : {}),
      ...(ports.length ? { ports } : {}),
      debug: Boolean(process.env.MOAT_DEBUG),
      // A first vm run builds the guest assets (about half a minute): say so on a terminal.
      ...(process.stderr.isTTY
        ? { progress: (step: string) => process.stderr.write(`moat: guest assets: ${step}\n`) }
        : {}),
    },
    interactive: Boolean(values.interactive),
    tty: Boolean(values.tty),
  });
}
