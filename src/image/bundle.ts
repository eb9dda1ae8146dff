// OCI runtime bundles: the contract between the image side and the runtime side.
// A bundle is DIR/config.json + DIR/rootfs. The rootfs is either an overlay mount of the
// cached layer directories (fast; writes go to DIR/.moat/upper, never to the image) or a
// private copy of them (where overlayfs is unavailable). DIR/.moat/bundle.json records which,
// so removeBundle() can undo exactly what createBundle() did.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import writeFileAtomic from "write-file-atomic";
import { MoatError } from "../spec/errors.js";
import type { Mount, Spec } from "../spec/runtime.js";
import { MS_NODEV, mount, umount } from "../sys/fs.js";
import { testKillPoint } from "../sys/test-kill.js";
import { applyLayers, canUseOverlay, overlayMountOptions } from "./apply.js";
import { ensureLayers, resolveImage } from "./layers.js";
import { type SpecOverrides, specFromImage } from "./runtime-spec.js";
import type { ImageStore } from "./store.js";

export type RootfsMode = "overlay" | "copy";

export interface BundleOptions extends SpecOverrides {
  rootfsMode?: RootfsMode | "auto";
  /** The id of the bundle's lease, when the caller must record it before it is taken (moat run). */
  leaseId?: string;
}

/** The files etcFiles asks for, by their destination in the container. */
export function etcFileContents(
  hostname: string,
  e: NonNullable<BundleOptions["etcFiles"]>,
): Record<string, string> {
  const hosts = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
    `127.0.1.1\t${hostname}`,
    ...(e.extraHosts ?? []).map((h) => `${h.ip}\t${h.name}`),
  ];
  return {
    "/etc/hosts": `${hosts.join("\n")}\n`,
    "/etc/hostname": `${hostname}\n`,
    ...(e.dns?.length ? { "/etc/resolv.conf": `${e.dns.map((ip) => `nameserver ${ip}`).join("\n")}\n` } : {}),
  };
}

export interface BundleInfo {
  dir: string;
  rootfs: string;
  mode: RootfsMode;
  image: string;
  manifestDigest: string;
  spec: Spec;
}

interface BundleRecord {
  version: 1;
  mode: RootfsMode;
  image: string;
  manifestDigest: string;
  lease?: string;
  storeRoot: string;
}

const META = ".moat";

let overlayProbe: Promise<boolean> | undefined;

export async function createBundle(
  store: ImageStore,
  imageName: string,
  dir: string,
  opts: BundleOptions = {},
): Promise<BundleInfo> {
  dir = path.resolve(dir);
  if (await nonEmpty(dir)) {
    throw new MoatError("EEXIST", `${dir} exists and is not empty: choose a new directory for the bundle`);
  }
  const img = await resolveImage(store, imageName);
  const layerDirs = await ensureLayers(store, img);
  let mode: RootfsMode;
  if (opts.rootfsMode === "overlay" || opts.rootfsMode === "copy") mode = opts.rootfsMode;
  else {
    overlayProbe ??= canUseOverlay(path.join(store.root, "ingest"));
    mode = (await overlayProbe) ? "overlay" : "copy";
  }

  const tmp = `${dir}.moat-tmp-${randomBytes(6).toString("hex")}`;
  const lease =
    mode === "overlay"
      ? await store.lease([img.manifestDigest, ...img.image.rootfs.diff_ids], "bundle", {
          bundle: dir,
          ...(opts.leaseId ? { id: opts.leaseId } : {}),
        })
      : undefined;
  testKillPoint("bundle-leased");
  let renamed = false;
  let mounted = false;
  try {
    await fs.mkdir(path.join(tmp, META), { recursive: true, mode: 0o700 });
    await fs.mkdir(path.join(tmp, "rootfs"), { mode: 0o755 });
    if (mode === "copy") await applyLayers(layerDirs, path.join(tmp, "rootfs"));
    else {
      await fs.mkdir(path.join(tmp, META, "upper"), { mode: 0o755 });
      await fs.mkdir(path.join(tmp, META, "work"), { mode: 0o700 });
    }
    const record: BundleRecord = {
      version: 1,
      mode,
      image: imageName,
      manifestDigest: img.manifestDigest,
      storeRoot: store.root,
      ...(lease ? { lease: lease.id } : {}),
    };
    await fs.writeFile(path.join(tmp, META, "bundle.json"), JSON.stringify(record));
    await fs.rm(dir, { recursive: true, force: true }); // an empty dir the user made
    await fs.rename(tmp, dir);
    renamed = true;
    testKillPoint("bundle-renamed");
    const rootfs = path.join(dir, "rootfs");
    if (mode === "overlay") {
      const options = overlayMountOptions(
        layerDirs,
        path.join(dir, META, "upper"),
        path.join(dir, META, "work"),
      );
      // nodev: a device node shipped in an image must never open a host device.
      mount("overlay", rootfs, "overlay", MS_NODEV, options);
      mounted = true;
      testKillPoint("bundle-mounted");
    }
    const mounts = [...(opts.mounts ?? [])];
    if (opts.etcFiles) {
      // Files first, so that a -v on one of these paths (listed after) is the one seen.
      const etc = path.join(dir, META, "etc");
      await fs.mkdir(etc, { mode: 0o755 });
      const files = etcFileContents(opts.hostname ?? "moat", opts.etcFiles);
      const own: Mount[] = [];
      for (const [dest, text] of Object.entries(files)) {
        if (mounts.some((m) => m.destination === dest)) continue;
        const file = path.join(etc, path.basename(dest));
        await fs.writeFile(file, text, { mode: 0o644 });
        own.push({ destination: dest, type: "bind", source: file, options: ["rbind", "rprivate", "rw"] });
      }
      mounts.unshift(...own);
    }
    const spec = await specFromImage(img.image, rootfs, { ...opts, mounts });
    // config.json last: its presence means the bundle is complete.
    await writeFileAtomic(path.join(dir, "config.json"), `${JSON.stringify(spec, null, 2)}\n`);
    return { dir, rootfs, mode, image: imageName, manifestDigest: img.manifestDigest, spec };
  } catch (e) {
    if (mounted) umount(path.join(dir, "rootfs"), 2 /* MNT_DETACH */);
    await fs.rm(renamed ? dir : tmp, { recursive: true, force: true });
    await lease?.release();
    throw e;
  }
}

/** Undo createBundle(): unmount the rootfs, release the layers, remove the directory. */
/** A bundle's config.json, parsed; a missing or unparsable one is an EINVAL naming it. */
export function readBundleSpec(dir: string): Spec {
  try {
    return JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8")) as Spec;
  } catch (e) {
    throw new MoatError(
      "EINVAL",
      `${dir}/config.json is not a readable runtime config (${(e as Error).message}): pass the directory of an OCI bundle`,
    );
  }
}

/** readBundleSpec, and the spec must name a process and a root to run. */
export function readRunnableBundleSpec(
  dir: string,
): Spec & { process: NonNullable<Spec["process"]>; root: { path: string } } {
  const spec = readBundleSpec(dir);
  if (!spec.process || !spec.root?.path) {
    throw new MoatError(
      "EINVAL",
      `${dir}/config.json has no process or root.path: it is not a runnable bundle`,
    );
  }
  return spec as Spec & { process: NonNullable<Spec["process"]>; root: { path: string } };
}

export async function removeBundle(dir: string): Promise<void> {
  dir = path.resolve(dir);
  let record: BundleRecord | undefined;
  try {
    record = JSON.parse(await fs.readFile(path.join(dir, META, "bundle.json"), "utf8")) as BundleRecord;
  } catch {
    throw new MoatError(
      "EINVAL",
      `${dir} is not a bundle made by moat (no ${META}/bundle.json): remove it by hand`,
    );
  }
  if (record.mode === "overlay") {
    try {
      umount(path.join(dir, "rootfs"), 2 /* MNT_DETACH */);
    } catch (e) {
      if ((e as { code?: string }).code !== "EINVAL" && (e as { code?: string }).code !== "ENOENT") throw e;
    }
  }
  await fs.rm(dir, { recursive: true, force: true });
  if (record.lease)
    await fs.rm(path.join(record.storeRoot, "leases", `${record.lease}.json`), { force: true });
}

async function nonEmpty(dir: string): Promise<boolean> {
  try {
    return (await fs.readdir(dir)).length > 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    if ((e as NodeJS.ErrnoException).code === "ENOTDIR") return true;
    throw e;
  }
}
