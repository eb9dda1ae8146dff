// Writes tiny OCI image layouts (image-spec "image-layout") for tests to push to a
// registry: blobs/sha256/*, index.json and oci-layout.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import type { Descriptor, ImageIndex, ImageManifest } from "../../src/spec/image.js";
import { MediaType, RefNameAnnotation } from "../../src/spec/image.js";

export interface LayoutOptions {
  /** Gzipped tar layers, bottom first. */
  layers: Buffer[];
  /** The image configuration; `rootfs` is filled in from the layers when absent. */
  config: object;
  /** The ref name index.json gives the image. */
  tag: string;
  /** Wrap the image in an image index with linux/amd64 and a dummy linux/arm64 entry. */
  index?: boolean;
}

export interface WrittenLayout {
  dir: string;
  tag: string;
  /** What index.json points at: the image manifest, or the image index with `index: true`. */
  top: Descriptor;
  topBytes: Buffer;
  /** The linux/amd64 image manifest. */
  manifest: Descriptor;
  manifestBytes: Buffer;
  config: Descriptor;
  configBytes: Buffer;
  layers: Descriptor[];
  /** The linux/arm64 dummy manifest, with `index: true`. */
  armManifest?: Descriptor;
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A gzipped tar holding the given regular files (mode 0644, mtime 0, so output is reproducible). */
export async function makeLayer(files: Record<string, string | Buffer>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on("end", () => resolve());
    p.on("error", reject);
  });
  for (const [name, content] of Object.entries(files)) {
    p.entry({ name, mode: 0o644, mtime: new Date(0), type: "file" }, content);
  }
  p.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

async function writeBlob(dir: string, bytes: Buffer, mediaType: string): Promise<Descriptor> {
  const digest = sha256(bytes);
  await writeFile(join(dir, "blobs", "sha256", digest.slice("sha256:".length)), bytes);
  return { mediaType, digest, size: bytes.length };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), "utf8");
}

async function writeImage(
  dir: string,
  layers: Descriptor[],
  config: object,
): Promise<{ manifest: Descriptor; manifestBytes: Buffer; config: Descriptor; configBytes: Buffer }> {
  const configBytes = json(config);
  const configDesc = await writeBlob(dir, configBytes, MediaType.ociConfig);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDesc,
    layers,
  };
  const manifestBytes = json(manifest);
  const manifestDesc = await writeBlob(dir, manifestBytes, MediaType.ociManifest);
  return { manifest: manifestDesc, manifestBytes, config: configDesc, configBytes };
}

export async function writeOciLayout(dir: string, opts: LayoutOptions): Promise<WrittenLayout> {
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await writeFile(join(dir, "oci-layout"), json({ imageLayoutVersion: "1.0.0" }));

  const layers: Descriptor[] = [];
  for (const layer of opts.layers) layers.push(await writeBlob(dir, layer, MediaType.ociLayerGzip));
  const config: Record<string, unknown> = {
    architecture: "amd64",
    os: "linux",
    ...opts.config,
  };
  if (config["rootfs"] === undefined) {
    config["rootfs"] = { type: "layers", diff_ids: opts.layers.map((l) => sha256(gunzipSync(l))) };
  }
  const amd = await writeImage(dir, layers, config);
  const result: WrittenLayout = {
    dir,
    tag: opts.tag,
    top: amd.manifest,
    topBytes: amd.manifestBytes,
    manifest: amd.manifest,
    manifestBytes: amd.manifestBytes,
    config: amd.config,
    configBytes: amd.configBytes,
    layers,
  };

  if (opts.index === true) {
    const arm = await writeImage(dir, layers, { ...config, architecture: "arm64", variant: "v8" });
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { ...amd.manifest, platform: { architecture: "amd64", os: "linux" } },
        { ...arm.manifest, platform: { architecture: "arm64", os: "linux", variant: "v8" } },
      ],
    };
    const indexBytes = json(index);
    result.top = await writeBlob(dir, indexBytes, MediaType.ociIndex);
    result.topBytes = indexBytes;
    result.armManifest = arm.manifest;
  }

  const layoutIndex: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [{ ...result.top, annotations: { [RefNameAnnotation]: opts.tag } }],
  };
  await writeFile(join(dir, "index.json"), json(layoutIndex));
  return result;
}
