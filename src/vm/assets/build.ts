// Builds the guest kernel + initramfs into moat's asset cache. Everything is assembled
// in a staging directory next to the cache and renamed into place as the last step, so
// a crash or a concurrent build can never leave a half-built cache that gets used.
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import writeFileAtomic from "write-file-atomic";
import { CREDS_HELPER, FRESH_HELPER, PTY_HELPER } from "../../agent/protocol.js";
import { MoatError } from "../../spec/errors.js";
import { pidAlive } from "../../sys/pids.js";
import { CpioWriter } from "./cpio.js";
import { debFields, download, extract, resolveDependency } from "./debian.js";
import { buildGuestHelper } from "./guest-helpers.js";
import { agentBundle, type GuestFile, hashAgentSources, nodeFiles } from "./guest-node.js";
import { GUEST_AGENT_PATH, GUEST_IMAGE_MOUNT, INIT_SCRIPT, MODULE_LIST_PATH } from "./init-script.js";
import {
  ASSETS_VERSION,
  assetDir,
  KERNEL_FILE,
  MANIFEST,
  type Manifest,
  type ManifestFile,
  moatRoot,
  readManifest,
  sha256File,
  VMLINUX_FILE,
} from "./manifest.js";
import {
  type ModuleEntry,
  modinfoDepends,
  moduleName,
  parseModulesDep,
  resolveLoadOrder,
} from "./modules.js";
import { defaultProgress, type ProgressFn } from "./progress.js";
import { extractVmlinux } from "./vmlinux.js";

/** What the guest needs: the console and agent channel, disks, the 9p share, overlay, network. */
export const GUEST_MODULES = [
  "virtio_ring",
  "virtio",
  "virtio_mmio",
  "virtio_console",
  "virtio_blk",
  // erofs (the guest image) needs libcrc32c, which needs a crc32c implementation at load
  // time: a soft dependency that modules.dep does not list, so it is named here first.
  "crc32c_generic",
  "erofs",
  "netfs",
  "fscache",
  "9pnet",
  "9pnet_virtio",
  "9p",
  "overlay",
  "virtio_net",
] as const;

export const KERNEL_META_PACKAGE = "linux-image-amd64";
export const BUSYBOX_PACKAGE = "busybox-static";
/**
 * Left uncompressed: under TCG the guest's gunzip of this image costs about 0.2 s per
 * boot (measured: median 2.08 s raw against 2.28 s gzip, boot to first output), while
 * the 2 MB it would save on the host's disk do not matter.
 */
export const INITRD_FILE = "initramfs.cpio";
/**
 * Node, its libraries and the agent, as a read-only erofs disk the guest mounts, rather than
 * in the initramfs: the kernel then reads only the pages Node touches, instead of copying
 * and unpacking about 100 MB into guest RAM at every boot, and QEMU keeps no 100 MB copy of
 * the initramfs for the guest's reset.
 */
export const IMAGE_FILE = "guest.erofs";

export interface GuestAssets {
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly image: string;
  readonly manifest: Manifest;
}

export interface EnsureAssetsOptions {
  /** moat's state root; default $MOAT_ROOT or /var/lib/moat. */
  readonly root?: string;
  readonly progress?: ProgressFn;
  /** Re-hash the cached files instead of trusting their sizes. */
  readonly verify?: boolean;
}

/** The cached guest assets, building them first if the cache is missing or incomplete. */
export async function ensureAssets(opts: EnsureAssetsOptions = {}): Promise<GuestAssets> {
  const root = opts.root ?? moatRoot();
  const dir = assetDir(root);
  const cached = await readManifest(dir, opts.verify);
  // The agent's sources unchanged since the cache was built: no need to bundle it again to
  // compare (esbuild costs a process and a few hundred ms on every sandbox's start).
  if (
    cached?.agentSources &&
    cached.nodeVersion === process.version &&
    (await hashAgentSources(cached.agentSources.files)) === cached.agentSources.sha256
  )
    return describe(dir, cached);
  // Without esbuild (an installed moat has no dev dependencies) the agent cannot be
  // re-bundled, so an existing cache is trusted as it is.
  const agent = await agentBundle().catch((e: unknown) => {
    if (cached) return undefined;
    throw e;
  });
  if (cached && (!agent || (cached.agentSha256 === agent.sha256 && cached.nodeVersion === process.version)))
    return describe(dir, cached);
  const progress = opts.progress ?? defaultProgress();
  const parent = join(root, "assets");
  await mkdir(parent, { recursive: true, mode: 0o755 }).catch((e: NodeJS.ErrnoException) => {
    throw new MoatError(
      e.code === "EACCES" || e.code === "EPERM" || e.code === "EROFS" ? "EACCES" : "EIO",
      `cannot create the guest asset cache ${parent} (${e.code}); run as root or set MOAT_ROOT to a writable directory`,
      { cause: e },
    );
  });
  await removeAbandonedBuilds(parent);
  const staging = await mkdtemp(join(parent, `.build-${ASSETS_VERSION}-${process.pid}-`));
  const scratch = await mkdtemp(join(tmpdir(), "moat-assets-"));
  try {
    const manifest = await buildInto(staging, scratch, progress);
    progress(`installing into ${dir}`);
    const installed = await install(staging, dir, manifest);
    progress("done");
    return describe(dir, installed ?? manifest);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function describe(dir: string, m: Manifest): GuestAssets {
  return {
    dir,
    kernel: join(dir, m.kernel),
    initrd: join(dir, m.initrd),
    image: join(dir, m.image),
    manifest: m,
  };
}

async function buildInto(staging: string, scratch: string, progress: ProgressFn): Promise<Manifest> {
  progress(`resolving ${KERNEL_META_PACKAGE}`);
  const kernelPkg = await resolveDependency(KERNEL_META_PACKAGE, /^linux-image-\d[\w.+-]*-amd64$/);
  progress(`downloading ${kernelPkg} and ${BUSYBOX_PACKAGE}`);
  await mkdir(join(scratch, "debs"));
  const [kernelDeb, busyboxDeb] = await Promise.all([
    download(kernelPkg, join(scratch, "debs")),
    download(BUSYBOX_PACKAGE, join(scratch, "debs")),
  ]);
  const [kf, bf] = await Promise.all([debFields(kernelDeb, ["Version"]), debFields(busyboxDeb, ["Version"])]);
  progress(`unpacking ${kernelPkg} ${kf["Version"]}`);
  const kx = join(scratch, "kernel");
  const bx = join(scratch, "busybox");
  await Promise.all([extract(kernelDeb, kx), extract(busyboxDeb, bx)]);

  const { vmlinuz, release } = await findKernel(kx, kernelPkg);
  // Booting the ELF vmlinux through PVH skips the guest's own xz decompression of the
  // bzImage, which under TCG costs seconds on every boot (measured: about 5.5 s to
  // about 2.5 s from start to poweroff).
  const pvh = /^CONFIG_PVH=y$/m.test(
    await readFile(join(kx, "boot", `config-${release}`), "utf8").catch(() => ""),
  );
  const kernel = pvh ? await extractVmlinux(vmlinuz, kernelPkg) : vmlinuz;
  const kernelFile = pvh ? VMLINUX_FILE : KERNEL_FILE;
  const modRoot = await findModuleRoot(kx, release, kernelPkg);
  progress(`resolving modules for ${release}`);
  const order = await moduleOrder(modRoot);

  progress(`writing initramfs (${order.length} modules)`);
  const busybox = await readFile(join(bx, "bin", "busybox"));
  const applets = await busyboxApplets(join(bx, "bin", "busybox"));
  progress(`writing the guest image: Node.js ${process.version} and the agent`);
  const agent = await agentBundle();
  const imageFiles: GuestFile[] = [
    ...(await nodeFiles()),
    { path: GUEST_AGENT_PATH, data: agent.data, perm: 0o644 },
  ];
  await erofsImage(join(scratch, "image"), imageFiles, join(staging, IMAGE_FILE));
  const extra: GuestFile[] = [
    { path: PTY_HELPER.slice(1), data: await buildGuestHelper(scratch, "moat-pty"), perm: 0o755 },
    { path: CREDS_HELPER.slice(1), data: await buildGuestHelper(scratch, "moat-creds"), perm: 0o755 },
    { path: FRESH_HELPER.slice(1), data: await buildGuestHelper(scratch, "moat-fresh"), perm: 0o755 },
  ];
  // Node and its libraries stay at the paths it was linked for: links into the image.
  const links = imageFiles.map((f) => ({ path: f.path, target: `/${GUEST_IMAGE_MOUNT}/${f.path}` }));
  const initrd = await initramfs(busybox, applets, modRoot, release, order, extra, links);

  await writeFile(join(staging, kernelFile), kernel, { mode: 0o644 });
  await writeFile(join(staging, INITRD_FILE), initrd, { mode: 0o644 });
  const files: Record<string, ManifestFile> = {};
  for (const name of [kernelFile, INITRD_FILE, IMAGE_FILE]) {
    const p = join(staging, name);
    files[name] = { sha256: await sha256File(p), size: (await stat(p)).size };
  }
  const manifest: Manifest = {
    assetsVersion: ASSETS_VERSION,
    kernelPackage: kernelPkg,
    kernelPackageVersion: kf["Version"] ?? "",
    kernelRelease: release,
    busyboxPackageVersion: bf["Version"] ?? "",
    nodeVersion: process.version,
    agentSha256: agent.sha256,
    agentSources: agent.sources,
    kernel: kernelFile,
    initrd: INITRD_FILE,
    image: IMAGE_FILE,
    modules: order.map((m) => m.path),
    files,
  };
  await chmod(staging, 0o755);
  await writeFileAtomic(join(staging, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });
  return manifest;
}

async function findKernel(kx: string, pkg: string): Promise<{ vmlinuz: Buffer; release: string }> {
  const boot = await readdir(join(kx, "boot")).catch(() => [] as string[]);
  const names = boot.filter((f) => f.startsWith("vmlinuz-"));
  if (names.length !== 1) {
    throw new MoatError(
      "EIO",
      `${pkg} holds ${names.length} boot/vmlinuz-* files, expected one; is it a kernel image package?`,
    );
  }
  const vmlinuz = await readFile(join(kx, "boot", names[0]!));
  // A bzImage carries "HdrS" at 0x202; anything else would fail later inside QEMU with
  // a far less obvious message.
  if (vmlinuz.length < 0x206 || vmlinuz.toString("latin1", 0x202, 0x206) !== "HdrS") {
    throw new MoatError("EIO", `${names[0]} from ${pkg} is not an x86 bzImage; re-download the package`);
  }
  return { vmlinuz, release: names[0]!.slice("vmlinuz-".length) };
}

async function findModuleRoot(kx: string, release: string, pkg: string): Promise<string> {
  for (const lib of ["lib", "usr/lib"]) {
    const dir = join(kx, lib, "modules", release);
    if ((await readdir(dir).catch(() => undefined)) !== undefined) return dir;
  }
  throw new MoatError("EIO", `${pkg} has no lib/modules/${release}; the guest drivers cannot be loaded`);
}

/** Modules in load order, with compressed files made loadable by busybox insmod. */
async function moduleOrder(modRoot: string): Promise<ModuleEntry[]> {
  const depText = await readFile(join(modRoot, "modules.dep"), "utf8").catch(() => undefined);
  if (depText !== undefined) return resolveLoadOrder(parseModulesDep(depText), GUEST_MODULES);
  // No modules.dep in the package: read the same edges from each needed module's
  // .modinfo, following dependencies outward from the wanted set.
  const index = new Map<string, string>();
  for (const f of await readdir(join(modRoot, "kernel"), { recursive: true })) {
    if (/\.ko(\.(xz|zst))?$/.test(f)) index.set(moduleName(f), `kernel/${f}`);
  }
  const table = new Map<string, ModuleEntry>();
  const queue: string[] = [...GUEST_MODULES];
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (table.has(name)) continue;
    const path = index.get(name);
    if (!path) continue; // resolveLoadOrder reports it with the module that needed it
    const deps = modinfoDepends(await readModule(join(modRoot, path)), path);
    table.set(name, { name, path, deps });
    queue.push(...deps);
  }
  return resolveLoadOrder(table, GUEST_MODULES);
}

const execFileP = promisify(execFile);

/**
 * A module file's ELF bytes. Compressed modules are decompressed on the host with the
 * xz/zstd tools, so the guest's busybox insmod never has to support compression.
 */
export async function readModule(path: string): Promise<Buffer> {
  const tool = path.endsWith(".xz") ? "xz" : path.endsWith(".zst") ? "zstd" : undefined;
  if (!tool) return readFile(path);
  try {
    const { stdout } = await execFileP(tool, ["-dc", path], {
      encoding: "buffer",
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    throw new MoatError("EIO", `cannot decompress ${path} with ${tool}: install the ${tool}-utils package`, {
      cause: e,
    });
  }
}

async function busyboxApplets(busybox: string): Promise<string[]> {
  const { stdout } = await execFileP(busybox, ["--list-full"], { encoding: "utf8" }).catch((e: unknown) => {
    throw new MoatError(
      "EIO",
      `cannot list the applets of ${busybox}; is ${BUSYBOX_PACKAGE} a static x86-64 build?`,
      {
        cause: e,
      },
    );
  });
  return stdout
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s !== "" && !s.startsWith("/") && !s.split("/").includes(".."));
}

/**
 * Write `files` into a tree under `tree` and make a read-only, uncompressed erofs image of it
 * (uncompressed: under TCG the guest's lz4 costs more than the reads it saves). Fixed
 * timestamp, UUID and owners make the image the same bytes for the same files.
 */
async function erofsImage(tree: string, files: readonly GuestFile[], out: string): Promise<void> {
  for (const f of files) {
    await mkdir(join(tree, dirname(f.path)), { recursive: true });
    await writeFile(join(tree, f.path), f.data, { mode: f.perm });
    await chmod(join(tree, f.path), f.perm);
  }
  try {
    await execFileP("mkfs.erofs", [
      "--quiet",
      "-T0",
      "-U00000000-0000-0000-0000-00000000a0a7",
      "--all-root",
      out,
      tree,
    ]);
  } catch (e) {
    throw new MoatError(
      "EIO",
      `cannot make the guest image with mkfs.erofs: ${(e as Error).message.trim()}; install the erofs-utils package`,
      { cause: e },
    );
  }
  await chmod(out, 0o644);
}

async function initramfs(
  busybox: Buffer,
  applets: readonly string[],
  modRoot: string,
  release: string,
  order: readonly ModuleEntry[],
  extra: readonly GuestFile[],
  links: ReadonlyArray<{ path: string; target: string }> = [],
): Promise<Buffer> {
  type Entry =
    | { kind: "dir" }
    | { kind: "file"; data: Buffer; perm: number }
    | { kind: "link"; target: string }
    | { kind: "chr"; major: number; minor: number; perm: number };
  const entries = new Map<string, Entry>();
  const dir = (p: string) => {
    const parts = p.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (!entries.has(d)) entries.set(d, { kind: "dir" });
    }
  };
  const put = (p: string, e: Entry) => {
    if (p.includes("/")) dir(p.slice(0, p.lastIndexOf("/")));
    if (!entries.has(p)) entries.set(p, e);
  };
  for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run", "mnt", "root"])
    dir(d);
  put("init", { kind: "file", data: Buffer.from(INIT_SCRIPT), perm: 0o755 });
  put("bin/busybox", { kind: "file", data: busybox, perm: 0o755 });
  for (const a of applets) put(a, { kind: "link", target: "/bin/busybox" });
  put("dev/console", { kind: "chr", major: 5, minor: 1, perm: 0o600 });
  put("dev/null", { kind: "chr", major: 1, minor: 3, perm: 0o666 });
  const guestPaths: string[] = [];
  for (const m of order) {
    const guestPath = `lib/modules/${release}/${m.path.replace(/\.(xz|zst)$/, "")}`;
    put(guestPath, { kind: "file", data: await readModule(join(modRoot, m.path)), perm: 0o644 });
    guestPaths.push(`/${guestPath}`);
  }
  for (const f of extra) put(f.path, { kind: "file", data: f.data, perm: f.perm });
  for (const l of links) put(l.path, { kind: "link", target: l.target });
  dir(GUEST_IMAGE_MOUNT);
  put(MODULE_LIST_PATH, { kind: "file", data: Buffer.from(`${guestPaths.join("\n")}\n`), perm: 0o644 });

  // Sorted names put every directory before its contents, and make the image reproducible.
  const w = new CpioWriter();
  for (const name of [...entries.keys()].sort()) {
    const e = entries.get(name)!;
    if (e.kind === "dir") w.dir(name, name === "tmp" ? 0o1777 : 0o755);
    else if (e.kind === "file") w.file(name, e.data, e.perm);
    else if (e.kind === "link") w.symlink(name, e.target);
    else w.charDevice(name, e.major, e.minor, e.perm);
  }
  return w.finish();
}

/**
 * Move the staging dir into place. Losing a race to a concurrent build is fine: the
 * winner's complete cache is used and ours is dropped.
 */
async function install(staging: string, dir: string, ours: Manifest): Promise<Manifest | undefined> {
  try {
    await rename(staging, dir);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
  }
  const theirs = await readManifest(dir);
  // Another build's complete cache counts only if it carries the same agent and Node.
  if (theirs && theirs.agentSha256 === ours.agentSha256 && theirs.nodeVersion === ours.nodeVersion) {
    await rm(staging, { recursive: true, force: true });
    return theirs;
  }
  // An incomplete or stale directory: set it aside first so the rename stays atomic for
  // readers.
  const aside = `${dir}.stale-${process.pid}-${Date.now()}`;
  await rename(dir, aside);
  await rename(staging, dir);
  await rm(aside, { recursive: true, force: true });
  return undefined;
}

/** Staging dirs of builds whose process is gone. */
async function removeAbandonedBuilds(parent: string): Promise<void> {
  for (const name of await readdir(parent)) {
    const m = /^\.build-[^-]+-(\d+)-/.exec(name) ?? /\.stale-(\d+)-/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    await rm(join(parent, name), { recursive: true, force: true });
  }
}
