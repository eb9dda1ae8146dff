// Where the guest assets live and how a complete cache is recognised. The manifest is
// the last file written; a directory without a valid one is never used.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";

/**
 * Bump when anything that ends up in the asset directory changes (init script, module
 * list, layout), so hosts rebuild instead of booting a stale guest.
 */
export const ASSETS_VERSION = "23";

export const MANIFEST = "manifest.json";
export const KERNEL_FILE = "vmlinuz";
export const VMLINUX_FILE = "vmlinux";

/** moat's state root: $MOAT_ROOT, else /var/lib/moat. */
export function moatRoot(): string {
  return process.env["MOAT_ROOT"] ?? "/var/lib/moat";
}

/** The directory holding this version's guest kernel, initramfs and manifest. */
export function assetDir(root: string = moatRoot()): string {
  return join(root, "assets", ASSETS_VERSION);
}

export interface ManifestFile {
  readonly sha256: string;
  readonly size: number;
}

export interface Manifest {
  readonly assetsVersion: string;
  readonly kernelPackage: string;
  readonly kernelPackageVersion: string;
  /** `uname -r` inside the guest. */
  readonly kernelRelease: string;
  readonly busyboxPackageVersion: string;
  /** The host Node.js copied into the guest to run the agent. */
  readonly nodeVersion: string;
  /** sha256 of the bundled agent, so a changed agent rebuilds the initramfs. */
  readonly agentSha256: string;
  /**
   * The files the agent was bundled from (relative to moat's dist/) and a hash of their
   * contents: when they are unchanged the cache is current without bundling again.
   */
  readonly agentSources?: { readonly files: readonly string[]; readonly sha256: string };
  readonly kernel: string;
  readonly initrd: string;
  /** The read-only guest image (erofs): Node, its libraries and the agent. */
  readonly image: string;
  /** Module files in the order /init loads them. */
  readonly modules: readonly string[];
  readonly files: Readonly<Record<string, ManifestFile>>;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * The manifest of a complete asset directory, or undefined when the directory is
 * missing, half-written or from another assets version. Sizes are always checked;
 * hashes only with `verify`, since the cache check sits on every VM start.
 */
export async function readManifest(dir: string, verify = false): Promise<Manifest | undefined> {
  let m: Manifest;
  try {
    m = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as Manifest;
  } catch {
    return undefined;
  }
  if (
    m.assetsVersion !== ASSETS_VERSION ||
    typeof m.files !== "object" ||
    !m.files[m.kernel] ||
    !m.files[m.initrd] ||
    !m.files[m.image]
  ) {
    return undefined;
  }
  for (const [name, f] of Object.entries(m.files)) {
    if (!/^[\w.-]+$/.test(name) || name.startsWith(".")) return undefined;
    try {
      if ((await stat(join(dir, name))).size !== f.size) return undefined;
      if (verify && (await sha256File(join(dir, name))) !== f.sha256) return undefined;
    } catch {
      return undefined;
    }
  }
  return m;
}
