// moat run: image -> bundle -> sandbox -> one container, its stdio wired to this terminal,
// its exit status as ours. Everything it made is removed when it ends, however it ends.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { createBundle, readRunnableBundleSpec, removeBundle } from "../image/bundle.js";
import type { ImageStore } from "../image/store.js";
import { chooseIsolation, selectBackend } from "../isolation/index.js";
import { MoatError } from "../spec/errors.js";
import type { Spec } from "../spec/runtime.js";
import { parseWithCommand } from "./args.js";
import { bundleDir, newId } from "./containers.js";
import { runForeground } from "./foreground.js";
import { imageName } from "./image-commands.js";
import { runDetached } from "./lifecycle.js";
import type { Output } from "./output.js";

const USAGE =
  "usage: moat run [--isolation vm|userkernel|auto] [-d [--name NAME]] [-i] [-e K=V] [-w DIR] [-u USER] [--hostname H] [--memory 512m] [--cpus N] [--network nat|none] [-p HOST:GUEST]... [--keep] IMAGE|BUNDLE-DIR [CMD...]";

/** "512", "512m", "2g" -> MiB. */
export function parseMemory(text: string): number {
  const m = /^(\d+)([mg]?)i?b?$/i.exec(text.trim());
  if (!m) throw new MoatError("EINVAL", `--memory "${text}" is not a size: use e.g. 512m or 2g`);
  const n = Number(m[1]) * (m[2]?.toLowerCase() === "g" ? 1024 : 1);
  if (n < 64) throw new MoatError("EINVAL", `--memory ${text} is too small: a sandbox needs at least 64m`);
  return n;
}

/** "--network nat|none": the sandbox's network (vm: user-mode NAT through passt, with the host's loopback out of reach; or no NIC). */
export function parseNetwork(text: string): "nat" | "none" {
  if (text === "nat" || text === "none") return text;
  throw new MoatError("EINVAL", `--network "${text}" is not a network: use nat (the default) or none`);
}

/** "-p 8080:80": host port 8080 on 127.0.0.1 forwarded to port 80 in the sandbox. */
export function parsePortForward(text: string): { host: number; guest: number } {
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(text.trim());
  const host = Number(m?.[1]);
  const guest = Number(m?.[2]);
  if (!m || host < 1 || host > 65535 || guest < 1 || guest > 65535) {
    throw new MoatError(
      "EINVAL",
      `-p "${text}" is not a port forward: use HOST:GUEST with TCP ports from 1 to 65535, e.g. -p 8080:80`,
    );
  }
  return { host, guest };
}

/** An OCI bundle given by path: its config.json as is, the command replaced if one is given. */
async function openBundle(
  dir: string,
  command: string[],
): Promise<{ dir: string; spec: Spec; rootfs: string }> {
  const spec = readRunnableBundleSpec(dir);
  if (command.length) spec.process.args = command;
  return { dir: path.resolve(dir), spec, rootfs: path.resolve(dir, spec.root.path) };
}

async function isBundleDir(text: string): Promise<boolean> {
  if (!text.includes("/") && !text.startsWith(".")) return false;
  try {
    return (await fs.stat(path.join(text, "config.json"))).isFile();
  } catch {
    return false;
  }
}

export async function cmdRun(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals, command } = parseWithCommand(
    argv,
    {
      isolation: { type: "string" },
      interactive: { type: "boolean", short: "i" },
      tty: { type: "boolean", short: "t" },
      env: { type: "string", short: "e", multiple: true },
      workdir: { type: "string", short: "w" },
      user: { type: "string", short: "u" },
      hostname: { type: "string" },
      keep: { type: "boolean" },
      rm: { type: "boolean" },
      memory: { type: "string", short: "m" },
      cpus: { type: "string" },
      network: { type: "string" },
      publish: { type: "string", short: "p", multiple: true },
      detach: { type: "boolean", short: "d" },
      name: { type: "string" },
    },
    1,
  );
  if (positionals.length === 0 && command.length > 0) throw new MoatError("EINVAL", USAGE);
  const isolation = chooseIsolation({ flag: values.isolation });
  const target = positionals[0] ?? "default";
  const memoryMiB = values.memory ? parseMemory(values.memory) : undefined;
  const cpus = values.cpus ? Number(values.cpus) : undefined;
  if (cpus !== undefined && !(Number.isInteger(cpus) && cpus >= 1 && cpus <= 64)) {
    throw new MoatError("EINVAL", `--cpus ${values.cpus} is not a whole number from 1 to 64`);
  }
  const network = values.network !== undefined ? parseNetwork(values.network) : undefined;
  const ports = (values.publish ?? []).map(parsePortForward);
  if (network === "none" && ports.length > 0) {
    throw new MoatError("EINVAL", "-p needs a network: drop --network none or the -p options");
  }
  const given = await isBundleDir(target);
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
      overrides: {
        ...(command.length ? { args: command } : {}),
        ...(values.env ? { env: values.env } : {}),
        ...(values.workdir ? { cwd: values.workdir } : {}),
        ...(values.user ? { user: values.user } : {}),
        ...(values.hostname ? { hostname: values.hostname } : {}),
      },
      isolation,
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
  // Pick the backend before unpacking anything: a host that cannot run it learns so at once.
  const backend = await selectBackend(isolation);
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
            ...(command.length ? { args: command } : {}),
            ...(values.env ? { env: values.env } : {}),
            ...(values.workdir ? { cwd: values.workdir } : {}),
            ...(values.user ? { user: values.user } : {}),
            ...(values.hostname ? { hostname: values.hostname } : {}),
            ...(values.tty ? { terminal: true } : {}),
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
