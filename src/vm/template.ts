// VM templates (Kata's "VM templating"): boot one guest to a ready agent, pause it, and
// keep its RAM (a file) and its device state; every later sandbox of the same shape is a
// clone that maps that RAM copy-on-write and resumes from that state. A clone skips the
// kernel boot, the module loading and Node's start in the guest (seconds under TCG), and
// the pages it only reads stay shared between clones in the host's page cache.
//
// What clones share, and why templates are off unless the host's operator turns them on
// (spec/config.ts): the guest kernel's layout (KASLR) and everything in memory when the
// template paused. Nothing secret is in it (no container has run; the agent has only
// started), and each clone's CreateSandbox reseeds the guest's CRNG from host entropy and
// sets its clock before any container exists (agent/fresh.ts, moat-fresh.c).
//
// A template is made for one shape: accelerator, RAM, vCPUs, with or without a NIC, and
// the guest assets and QEMU build it was made with. Files live in
// <root>/vm-templates/<key>/ (memory, state, meta.json), made in a temp directory and
// renamed into place, so a template is whole or absent.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { MoatError } from "../spec/errors.js";
import { pidAlive } from "../sys/pids.js";
import { AgentClient } from "./agent-client.js";
import type { GuestAssets } from "./assets/build.js";
import { AGENT_PORT_NAME } from "./assets/init-script.js";
import type { Accel, Hypervisor, RunningVm, ShareConfig } from "./hypervisor/hypervisor.js";

export interface TemplateShape {
  readonly accel: Accel;
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly network: boolean;
  /** The 9p shares' tags and modes, in order; their host paths are each clone's own. */
  readonly shares: readonly Pick<ShareConfig, "tag" | "readonly">[];
  /** Read by the template's kernel as it booted, so part of what a clone is. */
  readonly kernelArgs: readonly string[];
}

export interface VmTemplate {
  readonly dir: string;
  /** The guest's RAM, mapped copy-on-write by each clone. */
  readonly memory: string;
  /** The paused guest's device state (QEMU's migration stream without RAM). */
  readonly state: string;
  /** When it was made, ms since the epoch. */
  readonly created: number;
}

interface Meta {
  readonly assets: string;
  readonly hypervisor: string;
  readonly shape: TemplateShape;
  readonly created: string;
}

const MEMORY = "memory";
const STATE = "state";
const META = "meta.json";

export function templateRoot(root: string): string {
  return join(root, "vm-templates");
}

/** What the guest assets are: a template of other assets would resume a different guest. */
function assetsId(assets: Pick<GuestAssets, "manifest">): string {
  const m = assets.manifest;
  return createHash("sha256")
    .update(JSON.stringify([m.assetsVersion, m.files, m.agentSha256, m.nodeVersion]))
    .digest("hex")
    .slice(0, 16);
}

export function templateKey(assetId: string, hypervisor: string, shape: TemplateShape): string {
  return createHash("sha256")
    .update(JSON.stringify([assetId, hypervisor, shape]))
    .digest("hex")
    .slice(0, 24);
}

export interface TemplateOptions {
  readonly root: string;
  readonly assets: Pick<GuestAssets, "kernel" | "initrd" | "image" | "manifest">;
  readonly hypervisor: Hypervisor;
  /** The hypervisor build (Hypervisor.version()): its state format must match. */
  readonly hypervisorVersion: string;
  readonly shape: TemplateShape;
  /** Until the template's guest agent answers. */
  readonly bootTimeoutMs: number;
  readonly progress?: (step: string) => void;
  /**
   * A template older than this is remade (its clones share one kernel layout and one
   * memory image; rotating bounds how long and how many). Default: DEFAULT_MAX_AGE_S.
   */
  readonly maxAgeSeconds?: number;
}

/** An hour: remaking a template costs one boot, a few seconds under TCG. */
export const DEFAULT_MAX_AGE_S = 3600;

/** The template of this shape, made now (one boot) if there is none yet, or it is too old. */
export async function ensureTemplate(opts: TemplateOptions): Promise<VmTemplate> {
  const assets = assetsId(opts.assets);
  const key = templateKey(assets, opts.hypervisorVersion, opts.shape);
  const parent = templateRoot(opts.root);
  const dir = join(parent, key);
  // Every time, not only when making one: a maker killed halfway leaves its temp
  // directory (up to the guest's RAM in size) even when the template exists.
  await pruneStale(parent, assets);
  const existing = await readTemplate(dir);
  if (existing) {
    const age = (Date.now() - existing.created) / 1000;
    if (age <= (opts.maxAgeSeconds ?? DEFAULT_MAX_AGE_S)) return existing;
    await dropTemplate(existing);
  }

  await mkdir(parent, { recursive: true, mode: 0o700 });
  opts.progress?.(`making a VM template (${opts.shape.memoryMiB} MiB, ${opts.shape.cpus} vCPU)`);
  const tmp = join(parent, `.${key}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  await mkdir(tmp, { mode: 0o700 });
  let vm: RunningVm | undefined;
  try {
    // The template's shares are empty directories: no guest mounts them before it pauses,
    // and each clone's QEMU is given its own paths.
    const shares: ShareConfig[] = [];
    for (const [i, s] of opts.shape.shares.entries()) {
      const hostPath = join(tmp, `share${i}`);
      await mkdir(hostPath, { mode: 0o700 });
      shares.push({ ...s, hostPath });
    }
    // Made here, so the guest's memory is readable by its owner only (QEMU would create
    // it with its umask); QEMU sizes it.
    await writeFile(join(tmp, MEMORY), "", { mode: 0o600 });
    vm = await opts.hypervisor.launch({
      id: `template-${key.slice(0, 12)}`,
      runDir: join(tmp, "run"),
      kernel: opts.assets.kernel,
      initrd: opts.assets.initrd,
      image: opts.assets.image,
      accel: opts.shape.accel,
      memoryMiB: opts.shape.memoryMiB,
      cpus: opts.shape.cpus,
      agentPortName: AGENT_PORT_NAME,
      shares,
      ...(opts.shape.network ? { network: {} } : {}),
      kernelArgs: opts.shape.kernelArgs,
      memoryFile: { path: join(tmp, MEMORY), shared: true },
    });
    const agent = await AgentClient.connect(vm, opts.bootTimeoutMs);
    await agent.call("GetGuestDetails", {}, { timeoutMs: opts.bootTimeoutMs });
    await vm.saveState(join(tmp, STATE));
    await vm.quit();
    vm = undefined;
    await rm(join(tmp, "run"), { recursive: true, force: true });
    for (const i of opts.shape.shares.keys())
      await rm(join(tmp, `share${i}`), { recursive: true, force: true });
    const meta: Meta = {
      assets,
      hypervisor: opts.hypervisorVersion,
      shape: opts.shape,
      created: new Date().toISOString(),
    };
    await writeFile(join(tmp, META), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
    try {
      await rename(tmp, dir);
    } catch (e) {
      // Another sandbox made the same template meanwhile: use that one.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
      await rm(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    if (vm) await vm.kill();
    await rm(tmp, { recursive: true, force: true });
    throw new MoatError("EIO", `cannot make a VM template: ${(e as Error).message}`, { cause: e });
  }
  const made = await readTemplate(dir);
  if (!made) throw new MoatError("EIO", `the VM template ${dir} vanished as it was made`);
  return made;
}

/** Forget a template a clone could not be restored from; the next sandbox makes it again. */
export async function dropTemplate(t: VmTemplate): Promise<void> {
  // Renamed first, so no sandbox starts from it while it is removed; running clones keep
  // their mappings of the unlinked memory file.
  const gone = join(
    dirname(t.dir),
    `.${basename(t.dir)}.gone-${process.pid}-${randomBytes(4).toString("hex")}`,
  );
  await rename(t.dir, gone).catch(() => {});
  await rm(gone, { recursive: true, force: true });
}

async function readTemplate(dir: string): Promise<VmTemplate | undefined> {
  const memory = join(dir, MEMORY);
  const state = join(dir, STATE);
  let created: number;
  try {
    const meta = JSON.parse(await readFile(join(dir, META), "utf8")) as Meta;
    created = Date.parse(meta.created);
    const [m, s] = await Promise.all([stat(memory), stat(state)]);
    if (!m.isFile() || !s.isFile() || s.size === 0 || !Number.isFinite(created)) return undefined;
  } catch {
    return undefined;
  }
  return { dir, memory, state, created };
}

/** Templates of other guest assets can never be used again; leftovers of crashed makers neither. */
async function pruneStale(parent: string, assets: string): Promise<void> {
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const dir = join(parent, name);
    if (name.startsWith(".")) {
      // A temp directory whose maker is gone (its pid is in the name).
      const pid = Number(/\.tmp-(\d+)-/.exec(name)?.[1] ?? /\.gone-(\d+)-/.exec(name)?.[1]);
      if (Number.isInteger(pid) && !pidAlive(pid)) await rm(dir, { recursive: true, force: true });
      continue;
    }
    const meta = await readFile(join(dir, META), "utf8")
      .then((t) => JSON.parse(t) as Meta)
      .catch(() => undefined);
    if (meta && meta.assets !== assets) await dropTemplate({ dir, memory: "", state: "", created: 0 });
  }
}
