// Load and save images as files: OCI image layouts (a directory or a tar of one) and
// `docker save` archives. Archives are untrusted: no name in them ever becomes a host path.
// Every file is streamed into the store by content digest, and the archive's own names are
// only looked up in memory; blobs an index names are verified against their digests.
import { createReadStream, createWriteStream } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import writeFileAtomic from "write-file-atomic";
import { MoatError } from "../spec/errors.js";
import {
  type Descriptor,
  type Image,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  MediaType,
  type Platform,
  RefNameAnnotation,
} from "../spec/image.js";
import { checkDigest, digestHex } from "./digest.js";
import { checkImagePlatform, DEFAULT_PLATFORM, selectPlatform } from "./platform.js";
import { formatReference, parseReference } from "./reference.js";
import type { ImageStore } from "./store.js";

const SMALL_FILE_LIMIT = 4 * 1024 * 1024;

export interface LoadOptions {
  /** Name for an image the archive leaves unnamed (or names by tag only). */
  name?: string;
  platform?: Platform;
}

/** Load every image of an OCI layout (dir or tar) or docker-save tar. Returns the names given. */
export async function loadArchive(
  store: ImageStore,
  source: string,
  opts: LoadOptions = {},
): Promise<string[]> {
  let st: import("node:fs").Stats;
  try {
    st = await fs.stat(source);
  } catch {
    throw new MoatError("ENOENT", `${source} does not exist: give an OCI layout directory or an image tar`);
  }
  const lease = await store.lease([], "load");
  try {
    if (st.isDirectory()) return await loadLayoutDir(store, source, opts, lease.add);
    return await loadTar(store, createReadStream(source), opts, lease.add);
  } finally {
    await lease.release();
  }
}

async function loadLayoutDir(
  store: ImageStore,
  dir: string,
  opts: LoadOptions,
  hold: (d: string[]) => Promise<void>,
): Promise<string[]> {
  const indexBytes = await readSmall(path.join(dir, "index.json"), "the layout's index.json");
  const fetch = async (d: Descriptor) => {
    checkDigest(d.digest, "digest in the layout");
    await hold([d.digest]);
    await store.ingest(
      { digest: d.digest, size: d.size },
      createReadStream(path.join(dir, "blobs", "sha256", digestHex(d.digest))),
    );
  };
  return importOciIndex(store, indexBytes, fetch, opts);
}

async function loadTar(
  store: ImageStore,
  input: Readable,
  opts: LoadOptions,
  hold: (d: string[]) => Promise<void>,
): Promise<string[]> {
  // name in archive -> digest of its content (everything is ingested as it streams by)
  const files = new Map<string, string>();
  const small = new Map<string, Buffer>();
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    const name = normalizeArchiveName(header.name);
    if (header.type !== "file" || name === undefined) {
      stream.resume();
      stream.on("end", next);
      return;
    }
    const blob = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
    const keepSmall =
      !blob &&
      header.size !== undefined &&
      header.size <= SMALL_FILE_LIMIT &&
      /\.json$|^oci-layout$|^repositories$/.test(name);
    const chunks: Buffer[] = [];
    if (keepSmall) {
      stream.on("data", (c: unknown) => {
        chunks.push(c as Buffer);
      });
    }
    const expected = blob ? { digest: `sha256:${blob[1]}`, size: header.size } : { size: header.size };
    const done = keepSmall
      ? new Promise<{ digest: string }>((resolve, reject) => {
          stream.on("end", () => {
            small.set(name, Buffer.concat(chunks));
            store
              .putBytes(Buffer.concat(chunks), "application/octet-stream")
              .then((d) => resolve({ digest: d.digest }), reject);
          });
          stream.on("error", reject);
        })
      : store.ingest(expected, stream as unknown as Readable);
    done.then(
      async (r) => {
        files.set(name, r.digest);
        await hold([r.digest]);
        next();
      },
      (e) => next(e),
    );
  });
  await pipeline(input, extract);

  if (small.has("index.json")) {
    const fetch = async (d: Descriptor) => {
      checkDigest(d.digest, "digest in the archive");
      if (!(await store.hasBlob(d.digest))) {
        throw new MoatError(
          "ENOENT",
          `the archive's index names blob ${d.digest}, which the archive does not contain`,
        );
      }
    };
    return importOciIndex(store, small.get("index.json")!, fetch, opts);
  }
  if (small.has("manifest.json")) return importDockerArchive(store, small.get("manifest.json")!, files, opts);
  throw new MoatError(
    "EINVAL",
    "the tar holds neither an OCI layout (index.json) nor a docker save archive (manifest.json)",
  );
}

async function importOciIndex(
  store: ImageStore,
  indexBytes: Buffer,
  fetch: (d: Descriptor) => Promise<void>,
  opts: LoadOptions,
): Promise<string[]> {
  const index = parseJson<ImageIndex>(indexBytes, "index.json");
  if (!Array.isArray(index.manifests))
    throw new MoatError("EINVAL", "index.json has no manifests array: not an OCI layout");
  const chosenName = namesForIndex(index.manifests, opts.name);
  const names: string[] = [];
  const tags: Array<[string, Descriptor]> = [];
  for (const [i, entry] of index.manifests.entries()) {
    const name = chosenName[i];
    if (!name) continue;
    let desc = entry;
    await fetch(desc);
    if (isIndexMediaType(desc.mediaType)) {
      const nested = await store.readJson<ImageIndex>(desc.digest);
      desc = selectPlatform(nested.manifests ?? [], opts.platform ?? DEFAULT_PLATFORM);
      await fetch(desc);
    }
    const manifest = await store.readJson<ImageManifest>(desc.digest);
    await fetch(manifest.config);
    for (const l of manifest.layers) await fetch(l);
    const image = await store.readJson<Image>(manifest.config.digest);
    if (!isIndexMediaType(entry.mediaType) && opts.platform) checkImagePlatform(name, image, opts.platform);
    tags.push([
      name,
      {
        mediaType: desc.mediaType,
        digest: desc.digest,
        size: desc.size,
        platform: { os: image.os, architecture: image.architecture },
      },
    ]);
    if (!names.includes(name)) names.push(name);
  }
  // Names only once every image of the archive is in: a failure part-way names none.
  for (const [name, desc] of tags) await store.tag(name, desc);
  if (names.length === 0) {
    throw new MoatError(
      "EINVAL",
      "the archive names no image (no ref.name annotation): give one with --name",
    );
  }
  return names;
}

async function importDockerArchive(
  store: ImageStore,
  manifestBytes: Buffer,
  files: Map<string, string>,
  opts: LoadOptions,
): Promise<string[]> {
  const entries = parseJson<Array<{ Config: string; RepoTags?: string[] | null; Layers: string[] }>>(
    manifestBytes,
    "manifest.json",
  );
  if (!Array.isArray(entries))
    throw new MoatError("EINVAL", "manifest.json is not a docker save manifest list");
  const need = (name: string) => {
    const d = files.get(normalizeArchiveName(name) ?? "");
    if (!d)
      throw new MoatError(
        "ENOENT",
        `the docker archive's manifest names ${name}, which the archive does not contain`,
      );
    return d;
  };
  if (opts.name && entries.length > 1) throw ambiguousName(entries.length, opts.name);
  const names: string[] = [];
  const pending: Array<[string, Descriptor]> = [];
  for (const e of entries) {
    const configDigest = need(e.Config);
    const image = await store.readJson<Image>(configDigest);
    const layers: Descriptor[] = [];
    for (const l of e.Layers) {
      const digest = need(l);
      const head = await readHead(store.blobPath(digest));
      const size = (await fs.stat(store.blobPath(digest))).size;
      const gz = head[0] === 0x1f && head[1] === 0x8b;
      layers.push({ mediaType: gz ? MediaType.ociLayerGzip : MediaType.ociLayer, digest, size });
    }
    if (layers.length !== image.rootfs?.diff_ids?.length) {
      throw new MoatError(
        "EINVAL",
        `docker archive image ${e.Config} has ${layers.length} layers but ${image.rootfs?.diff_ids?.length ?? 0} diff_ids`,
      );
    }
    const configSize = (await fs.stat(store.blobPath(configDigest))).size;
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: configDigest, size: configSize },
      layers,
    };
    const desc = await store.putBytes(Buffer.from(JSON.stringify(manifest)), MediaType.ociManifest);
    if (opts.platform) checkImagePlatform(e.RepoTags?.[0] ?? e.Config, image, opts.platform);
    // --name is what the person asked for: it replaces the archive's own tags.
    const tags = opts.name ? [opts.name] : (e.RepoTags ?? []);
    for (const t of tags) {
      const name = formatReference(parseReference(t));
      pending.push([name, { ...desc, platform: { os: image.os, architecture: image.architecture } }]);
      names.push(name);
    }
  }
  // Names only once every image of the archive is in: a failure part-way names none.
  for (const [name, d] of pending) await store.tag(name, d);
  if (names.length === 0)
    throw new MoatError("EINVAL", "the docker archive names no image: give one with --name");
  return names;
}

/**
 * The name each index entry is loaded as (undefined: skipped). Without --name, an entry's
 * ref.name annotation (a bare tag such as "latest" is read as a reference, as before). With
 * --name, an archive of one image (however many entries name it) gets exactly that name; one
 * of several images whose entries are all annotated with bare tags gets REPO:TAG when --name
 * is a repository without a tag; anything else is ambiguous and refused.
 */
function namesForIndex(entries: Descriptor[], given: string | undefined): Array<string | undefined> {
  const annotations = entries.map((e) => e.annotations?.[RefNameAnnotation]);
  if (!given) return annotations.map((a) => (a ? formatReference(parseReference(a)) : undefined));
  const name = formatReference(parseReference(given));
  const images = new Set(entries.map((e) => e.digest));
  if (images.size <= 1) return entries.map(() => name);
  const bareTags = annotations.every((a) => a !== undefined && /^[\w][\w.-]{0,127}$/.test(a));
  const hasTag = /[:@][^/]*$/.test(given);
  if (bareTags && !hasTag) {
    return annotations.map((a) => formatReference({ ...parseReference(given), tag: a! }));
  }
  throw ambiguousName(images.size, given);
}

function ambiguousName(count: number, given: string): MoatError {
  return new MoatError(
    "EINVAL",
    `the archive holds ${count} images, so --name ${given} does not say which one to name: load it without --name to keep the names the archive gives them, or save one image per archive`,
  );
}

// ---- save ----

export interface SaveOptions {
  /** Write a directory instead of a tar. */
  directory?: boolean;
}

/** Write images as one OCI layout (dir, or a tar that is also a docker save archive), named by full reference. */
export async function saveImages(
  store: ImageStore,
  names: string[],
  out: string,
  opts: SaveOptions = {},
): Promise<void> {
  const manifests: Descriptor[] = [];
  const blobs = new Set<string>();
  for (const n of names) {
    const desc = await store.resolve(n);
    if (!desc)
      throw new MoatError("ENOENT", `no image named ${n} in the store: moat images lists what is there`);
    const manifest = await store.readJson<ImageManifest>(desc.digest);
    for (const d of [desc.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)])
      blobs.add(d);
    manifests.push({
      mediaType: desc.mediaType,
      digest: desc.digest,
      size: desc.size,
      ...(desc.platform ? { platform: desc.platform } : {}),
      annotations: { [RefNameAnnotation]: n },
    });
  }
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  const indexJson = Buffer.from(`${JSON.stringify(index)}\n`);
  const layoutJson = Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  if (opts.directory) {
    await fs.mkdir(path.join(out, "blobs", "sha256"), { recursive: true });
    for (const d of blobs) {
      const dest = path.join(out, "blobs", "sha256", digestHex(d));
      const tmp = `${dest}.tmp`;
      await fs.copyFile(store.blobPath(d), tmp);
      await fs.rename(tmp, dest);
    }
    await writeFileAtomic(path.join(out, "oci-layout"), layoutJson);
    await writeFileAtomic(path.join(out, "index.json"), indexJson);
    return;
  }
  const tmp = `${out}.tmp-${process.pid}`;
  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(tmp));
  try {
    const add = (name: string, body: Buffer) =>
      new Promise<void>((resolve, reject) =>
        pack.entry({ name, mode: 0o644, mtime: new Date(0) }, body, (e) => (e ? reject(e) : resolve())),
      );
    await add("oci-layout", layoutJson);
    for (const d of blobs) {
      const p = store.blobPath(d);
      const size = (await fs.stat(p)).size;
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry(
          { name: `blobs/sha256/${digestHex(d)}`, size, mode: 0o644, mtime: new Date(0) },
          (e) => (e ? reject(e) : resolve()),
        );
        pipeline(createReadStream(p), entry as unknown as Writable).catch(reject);
      });
    }
    await add("index.json", indexJson);
    // The same tar is also a `docker save` archive (as Docker 25+ writes them): manifest.json
    // points into blobs/, so `docker load` and tools reading docker-archive take it too.
    const dockerManifest = [];
    for (const m of manifests) {
      const manifest = await store.readJson<ImageManifest>(m.digest);
      dockerManifest.push({
        Config: `blobs/sha256/${digestHex(manifest.config.digest)}`,
        RepoTags: [m.annotations![RefNameAnnotation]!],
        Layers: manifest.layers.map((l) => `blobs/sha256/${digestHex(l.digest)}`),
      });
    }
    await add("manifest.json", Buffer.from(JSON.stringify(dockerManifest)));
    pack.finalize();
    await written;
    await fs.rename(tmp, out);
  } catch (e) {
    pack.destroy();
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

// ---- helpers ----

/** Archive names are looked up, never used as paths; still refuse anything odd. */
function normalizeArchiveName(name: string): string | undefined {
  const n = name.replace(/^\.\//, "");
  if (n.startsWith("/") || n.split("/").some((c) => c === ".." || c === "") || n.includes("\0"))
    return undefined;
  return n;
}

async function readSmall(file: string, what: string): Promise<Buffer> {
  try {
    const st = await fs.stat(file);
    if (st.size > SMALL_FILE_LIMIT)
      throw new MoatError("EINVAL", `${what} is over 4 MiB: not an image layout`);
    return await fs.readFile(file);
  } catch (e) {
    if (e instanceof MoatError) throw e;
    throw new MoatError("ENOENT", `${what} is missing (${file}): the directory is not an OCI image layout`);
  }
}

async function readHead(file: string): Promise<Buffer> {
  const fh = await fs.open(file, "r");
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0);
    return b;
  } finally {
    await fh.close();
  }
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString("utf8")) as T;
  } catch (e) {
    throw new MoatError("EINVAL", `${what} is not valid JSON`, { cause: e });
  }
}
