// Build an image in the store from uncompressed layer tars and a config: used for moat's
// built-in default image and by tests. Output is deterministic: the same inputs give the
// same digests (gzip without a timestamp, no wall-clock times unless the caller gives one).
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import tar from "tar-stream";
import { type Image, type ImageConfig, type ImageManifest, MediaType, type Platform } from "../spec/image.js";
import { sha256Digest } from "./digest.js";
import type { ImageStore } from "./store.js";

const gzipAsync = promisify(gzip);

export interface BuildOptions {
  /** Uncompressed layer tars, bottom first. */
  layers: Buffer[];
  config: ImageConfig;
  platform?: Platform;
  created?: string;
  history?: Image["history"];
  /** Tag the result with this full reference. */
  name?: string;
  annotations?: Record<string, string>;
}

export async function buildImage(
  store: ImageStore,
  opts: BuildOptions,
): Promise<{ manifestDigest: string; configDigest: string }> {
  const diffIds = opts.layers.map((l) => sha256Digest(l));
  const layerDescs = [];
  for (const tar of opts.layers) {
    const gz = await gzipAsync(tar, { level: 9 });
    layerDescs.push(await store.putBytes(gz, MediaType.ociLayerGzip));
  }
  const platform = opts.platform ?? { os: "linux", architecture: "amd64" };
  const image: Image = {
    ...(opts.created ? { created: opts.created } : {}),
    architecture: platform.architecture,
    os: platform.os,
    config: opts.config,
    rootfs: { type: "layers", diff_ids: diffIds },
    history: opts.history ?? diffIds.map(() => ({ created_by: "moat build" })),
  };
  const configDesc = await store.putBytes(Buffer.from(JSON.stringify(image)), MediaType.ociConfig);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDesc,
    layers: layerDescs,
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
  const manifestDesc = await store.putBytes(Buffer.from(JSON.stringify(manifest)), MediaType.ociManifest);
  if (opts.name) await store.tag(opts.name, { ...manifestDesc, platform });
  return { manifestDigest: manifestDesc.digest, configDigest: configDesc.digest };
}

export interface LayerEntry {
  /** Path inside the layer, without a leading "/" (and without a trailing one for directories). */
  name: string;
  type: "file" | "directory" | "symlink";
  mode: number;
  content?: Buffer;
  linkname?: string;
}

/**
 * An uncompressed layer tar, deterministic: entries sorted by name, owned by root, mtime 0,
 * so the same entries always give the same diffID.
 */
export async function packLayer(entries: LayerEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of sorted) {
    const content = e.content ?? Buffer.alloc(0);
    const header = {
      name: e.type === "directory" ? `${e.name}/` : e.name,
      type: e.type,
      mode: e.mode,
      uid: 0,
      gid: 0,
      mtime: new Date(0),
      size: content.length,
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
    };
    await new Promise<void>((resolve, reject) =>
      pack.entry(header, content, (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
