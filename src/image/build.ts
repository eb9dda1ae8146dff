// Build an image in the store from uncompressed layer tars and a config: used for moat's
// built-in default image and by tests. Output is deterministic: the same inputs give the
// same digests (gzip without a timestamp, no wall-clock times unless the caller gives one).
import { promisify } from "node:util";
import { gzip } from "node:zlib";
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
