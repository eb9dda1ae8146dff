// Pull: resolve a reference at a registry, pick the platform, and bring the manifest, config
// and layers into the store, verifying every blob against its digest while it streams.
// Layers download in parallel with retries; the name is tagged only once all blobs are in,
// so an interrupted pull leaves the store as it was (plus verified blobs, which gc() removes).
import pRetry from "p-retry";
import { readHostConfig } from "../spec/config.js";
import { MoatError } from "../spec/errors.js";
import {
  type Descriptor,
  type Image,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  isManifestMediaType,
  type Platform,
} from "../spec/image.js";
import { checkImagePlatform, DEFAULT_PLATFORM, selectPlatform } from "./platform.js";
import { formatReference, parseReference } from "./reference.js";
import { isRetriable, RegistryClient } from "./registry.js";
import type { ImageStore } from "./store.js";

export type PullEvent =
  | { type: "resolved"; ref: string; manifest: string; index?: string; layers: number; bytes: number }
  | {
      type: "layer";
      digest: string;
      size: number;
      state: "exists" | "downloading" | "done" | "retrying";
      error?: string;
    }
  | { type: "progress"; digest: string; current: number; size: number }
  | { type: "done"; ref: string; manifest: string };

export interface PullOptions {
  platform?: Platform;
  /** Registries tried first, in order; default: the host configuration's registryMirrors for the image's registry. */
  mirrors?: readonly string[];
  insecure?: boolean;
  credentials?: { username: string; password: string };
  /** Concurrent layer downloads. */
  parallel?: number;
  retries?: number;
  onEvent?: (e: PullEvent) => void;
}

export interface PullResult {
  name: string;
  manifest: Descriptor;
  image: Image;
}

const MAX_MANIFEST = 4 * 1024 * 1024;

export async function pull(store: ImageStore, refText: string, opts: PullOptions = {}): Promise<PullResult> {
  const ref = parseReference(refText);
  const name = formatReference(ref);
  const emit = opts.onEvent ?? (() => {});
  const retries = opts.retries ?? 4;
  const clientFor = (registry: string) =>
    new RegistryClient(registry, {
      ...(opts.insecure !== undefined ? { insecure: opts.insecure } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
    });
  const retry = <T>(fn: () => Promise<T>, onRetry?: (e: Error) => void) =>
    pRetry(fn, {
      retries,
      minTimeout: 200,
      maxTimeout: 3000,
      shouldRetry: (e) => isRetriable(e),
      onFailedAttempt: (e) => onRetry?.(e as unknown as Error),
    });

  // 1. The manifest (via the index when the reference names one), from the first mirror that
  // has it, else from the registry itself; every later request goes where the manifest came from.
  const wanted = ref.digest ?? ref.tag ?? "latest";
  let client = clientFor(ref.registry);
  let top: Awaited<ReturnType<RegistryClient["getManifest"]>> | undefined;
  const missed: string[] = [];
  for (const mirror of opts.mirrors ?? readHostConfig().registryMirrors?.[ref.registry] ?? []) {
    const c = clientFor(mirror);
    try {
      top = await retry(() => c.getManifest(ref.repository, wanted));
      client = c;
      break;
    } catch (e) {
      missed.push(`${mirror}: ${(e as Error).message}`);
    }
  }
  try {
    top ??= await retry(() => client.getManifest(ref.repository, wanted));
  } catch (e) {
    if (missed.length) (e as Error).message += ` (mirrors tried first: ${missed.join("; ")})`;
    throw e;
  }
  let indexDigest: string | undefined;
  const lease = await store.lease([], "pull");
  try {
    if (isIndexMediaType(top.mediaType)) {
      indexDigest = top.digest;
      const index = parseJson<ImageIndex>(top.bytes, "image index");
      const chosen = selectPlatform(index.manifests ?? [], opts.platform ?? DEFAULT_PLATFORM);
      await store.putBytes(top.bytes, top.mediaType, top.digest);
      top = await retry(() => client.getManifest(ref.repository, chosen.digest));
      if (top.digest !== chosen.digest) {
        throw new MoatError(
          "EDIGEST",
          `manifest for ${chosen.digest} hashed to ${top.digest}: the registry is corrupt`,
        );
      }
    }
    if (!isManifestMediaType(top.mediaType)) {
      throw new MoatError(
        "ENOTSUP",
        `${name} is a "${top.mediaType}" manifest: moat pulls OCI and Docker schema 2 images only`,
      );
    }
    if (top.bytes.length > MAX_MANIFEST) throw new MoatError("EINVAL", `manifest of ${name} is over 4 MiB`);
    const manifest = parseJson<ImageManifest>(top.bytes, "image manifest");
    if (!manifest.config?.digest || !Array.isArray(manifest.layers)) {
      throw new MoatError("EINVAL", `manifest of ${name} lacks a config or layers: the image is malformed`);
    }
    await lease.add([top.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]);
    emit({
      type: "resolved",
      ref: name,
      manifest: top.digest,
      ...(indexDigest ? { index: indexDigest } : {}),
      layers: manifest.layers.length,
      bytes: manifest.layers.reduce((n, l) => n + l.size, 0),
    });

    // 2. Config and layers: each streamed into the store, verified, retried.
    const fetchBlob = async (d: Descriptor, report: boolean) => {
      if (await store.hasBlob(d.digest)) {
        if (report) emit({ type: "layer", digest: d.digest, size: d.size, state: "exists" });
        return;
      }
      if (report) emit({ type: "layer", digest: d.digest, size: d.size, state: "downloading" });
      await retry(
        async () => {
          const { stream } = await client.openBlob(ref.repository, d.digest, d.size);
          let current = 0;
          await store.ingest({ digest: d.digest, size: d.size }, stream, (n) => {
            current += n;
            if (report) emit({ type: "progress", digest: d.digest, current, size: d.size });
          });
        },
        (e) => {
          if (report)
            emit({ type: "layer", digest: d.digest, size: d.size, state: "retrying", error: e.message });
        },
      );
      if (report) emit({ type: "layer", digest: d.digest, size: d.size, state: "done" });
    };
    await fetchBlob(manifest.config, false);
    const image = await store.readJson<Image>(manifest.config.digest);
    if (!image.rootfs || image.rootfs.diff_ids?.length !== manifest.layers.length) {
      throw new MoatError(
        "EINVAL",
        `config of ${name} does not list one diff_id per layer: the image is malformed`,
      );
    }
    // A single-platform image has no index to choose from: a --platform it is not for is
    // refused before any layer is fetched, as docker does, rather than taken silently.
    if (!indexDigest && opts.platform) checkImagePlatform(refText, image, opts.platform);
    await runLimited(manifest.layers, opts.parallel ?? 3, (l) => fetchBlob(l, true));

    // 3. Only now does the name point at it.
    const manifestDesc = await store.putBytes(top.bytes, top.mediaType, top.digest);
    await store.tag(name, {
      ...manifestDesc,
      platform: {
        os: image.os,
        architecture: image.architecture,
        ...(image.variant ? { variant: image.variant } : {}),
      },
      ...(indexDigest ? { annotations: { "io.moat.index.digest": indexDigest } } : {}),
    });
    emit({ type: "done", ref: name, manifest: top.digest });
    return { name, manifest: manifestDesc, image };
  } finally {
    await lease.release();
  }
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString("utf8")) as T;
  } catch (e) {
    throw new MoatError("EINVAL", `the ${what} is not valid JSON: the registry served a malformed image`, {
      cause: e,
    });
  }
}

/** Run fn over items with at most `limit` in flight; the first failure rejects after all settle. */
export async function runLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}
