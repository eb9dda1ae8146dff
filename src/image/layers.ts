// Unpacked layer cache: each layer is unpacked once into <root>/layers/sha256/<diffID> and
// shared by every container made from any image that has it.
import { MoatError } from "../spec/errors.js";
import type { Image, ImageManifest } from "../spec/image.js";
import { decompressStream } from "./decompress.js";
import { exists, type ImageStore } from "./store.js";
import { unpackLayer } from "./unpack.js";

export interface ResolvedImage {
  name: string;
  manifestDigest: string;
  manifest: ImageManifest;
  image: Image;
}

/** Read the manifest and config that a name (or manifest digest) points at. */
export async function resolveImage(store: ImageStore, nameOrDigest: string): Promise<ResolvedImage> {
  let digest = nameOrDigest;
  if (!nameOrDigest.startsWith("sha256:")) {
    const desc = await store.resolve(nameOrDigest);
    if (!desc) {
      throw new MoatError(
        "ENOENT",
        `no image named ${nameOrDigest} in the store: pull or load it first (moat images lists what is there)`,
      );
    }
    digest = desc.digest;
  }
  const manifest = await store.readJson<ImageManifest>(digest);
  const image = await store.readJson<Image>(manifest.config.digest);
  return { name: nameOrDigest, manifestDigest: digest, manifest, image };
}

/** Make sure every layer of the image is unpacked; returns their directories, bottom first. */
export async function ensureLayers(
  store: ImageStore,
  img: ResolvedImage,
  onLayer?: (diffId: string, state: "cached" | "unpacked") => void,
): Promise<string[]> {
  const diffIds = img.image.rootfs.diff_ids;
  // While we unpack, gc() must not take the blobs or the half-made layer directories.
  const lease = await store.lease(
    [img.manifestDigest, ...img.manifest.layers.map((l) => l.digest), ...diffIds],
    "unpack",
  );
  try {
    return await unpackAll(store, img, diffIds, onLayer);
  } finally {
    await lease.release();
  }
}

async function unpackAll(
  store: ImageStore,
  img: ResolvedImage,
  diffIds: string[],
  onLayer?: (diffId: string, state: "cached" | "unpacked") => void,
): Promise<string[]> {
  const dirs: string[] = [];
  for (const [i, layer] of img.manifest.layers.entries()) {
    const diffId = diffIds[i];
    if (!diffId)
      throw new MoatError("EINVAL", `image ${img.name} has more layers than diff_ids: it is malformed`);
    const dest = store.layerPath(diffId);
    if (await exists(dest)) {
      onLayer?.(diffId, "cached");
    } else {
      try {
        await unpackLayer({
          input: decompressStream(layer.mediaType, store.openBlob(layer.digest)),
          dest,
          expectedDiffId: diffId,
        });
        onLayer?.(diffId, "unpacked");
      } catch (e) {
        // Another process unpacked the same layer first: its copy is as good as ours.
        if (!(await exists(dest))) throw e;
        onLayer?.(diffId, "cached");
      }
    }
    dirs.push(dest);
  }
  return dirs;
}
