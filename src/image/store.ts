// The content-addressed image store under one root (default /var/lib/moat):
//
//   <root>/images/               an OCI image layout (skopeo and umoci can read it)
//     oci-layout, index.json     index.json names images by the ref.name annotation
//     blobs/sha256/<hex>         every manifest, config and layer, named by digest
//   <root>/ingest/               blobs being written (temp, then rename into blobs/)
//   <root>/layers/sha256/<hex>   unpacked layers, named by diffID (overlay lower dirs)
//   <root>/leases/<id>.json      digests a live process is using (a pull, a bundle): GC keeps them
//
// Several moat processes may use one root at once. Blobs are immutable and written by
// rename, so readers never lock. index.json and garbage collection take one lock.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import lockfile from "proper-lockfile";
import writeFileAtomic from "write-file-atomic";
import { MoatError } from "../spec/errors.js";
import { type Descriptor, type ImageIndex, RefNameAnnotation } from "../spec/image.js";
import { pidAlive, processStart, selfRef } from "../sys/pids.js";
import { checkDigest, digestHex, sha256Digest } from "./digest.js";
import { reachable } from "./reachable.js";

export const DEFAULT_ROOT = "/var/lib/moat";

export interface ImageRecord {
  /** Full reference, e.g. "docker.io/library/busybox:latest". */
  name: string;
  /** The image manifest (never an index: pull picks the platform). */
  manifest: Descriptor;
}

/** What a gc() removed. */
export interface GcResult {
  blobs: number;
  layers: number;
  bytes: number;
}

export interface Lease {
  id: string;
  release(): Promise<void>;
  add(digests: string[]): Promise<void>;
}

export class ImageStore {
  readonly root: string;
  readonly layoutDir: string;
  private constructor(root: string) {
    this.root = path.resolve(root);
    this.layoutDir = path.join(this.root, "images");
  }

  static async open(root: string = DEFAULT_ROOT): Promise<ImageStore> {
    const s = new ImageStore(root);
    // The root itself too: its store.lock is written by every command that names images.
    const dirs = [path.join(s.layoutDir, "blobs", "sha256"), s.ingestDir, s.layersDir, s.leasesDir, s.root];
    for (const d of dirs) {
      try {
        await fs.mkdir(d, { recursive: true, mode: 0o700 });
        // mkdir succeeds on a directory that exists but is not ours to write.
        await fs.access(d, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
      } catch (e) {
        throw notPermitted(e, s.root) ?? e;
      }
    }
    const layoutFile = path.join(s.layoutDir, "oci-layout");
    if (!(await exists(layoutFile))) {
      await writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    }
    const indexFile = path.join(s.layoutDir, "index.json");
    if (!(await exists(indexFile))) {
      await s.withLock(async () => {
        if (!(await exists(indexFile))) await s.writeIndex({ schemaVersion: 2, manifests: [] });
      });
    }
    return s;
  }

  get ingestDir(): string {
    return path.join(this.root, "ingest");
  }
  get layersDir(): string {
    return path.join(this.root, "layers", "sha256");
  }
  get leasesDir(): string {
    return path.join(this.root, "leases");
  }

  blobPath(digest: string): string {
    return path.join(this.layoutDir, "blobs", "sha256", digestHex(digest));
  }

  /** Where the unpacked layer with this diffID lives (it may not exist yet). */
  layerPath(diffId: string): string {
    return path.join(this.layersDir, digestHex(diffId));
  }

  async hasBlob(digest: string): Promise<boolean> {
    return exists(this.blobPath(digest));
  }

  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.blobPath(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        throw new MoatError(
          "ENOENT",
          `blob ${digest} is not in the store at ${this.root}: pull the image again`,
        );
      }
      throw e;
    }
  }

  async readJson<T>(digest: string): Promise<T> {
    const bytes = await this.readBlob(digest);
    try {
      return JSON.parse(bytes.toString("utf8")) as T;
    } catch (e) {
      throw new MoatError(
        "EIO",
        `blob ${digest} is not valid JSON: the image is corrupt; remove and pull it again`,
        {
          cause: e,
        },
      );
    }
  }

  openBlob(digest: string): Readable {
    return createReadStream(this.blobPath(digest));
  }

  /**
   * Stream a blob into the store. The bytes are hashed as they are written to a temp file in
   * ingest/, and renamed into blobs/ only if digest (and size, when known) match: a corrupt
   * or truncated download is never stored.
   */
  async ingest(
    expected: { digest?: string; size?: number },
    input: Readable,
    onBytes?: (n: number) => void,
  ): Promise<{ digest: string; size: number }> {
    if (expected.digest) checkDigest(expected.digest, "blob digest");
    if (expected.digest && (await this.hasBlob(expected.digest))) {
      // Already stored: drain the input so a tar being read around it can move on.
      for await (const _ of input) {
      }
      return {
        digest: expected.digest,
        size: expected.size ?? (await fs.stat(this.blobPath(expected.digest))).size,
      };
    }
    const tmp = path.join(this.ingestDir, `${process.pid}-${randomBytes(8).toString("hex")}`);
    const hash = createHash("sha256");
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        if (expected.size !== undefined && size > expected.size) {
          cb(
            new MoatError(
              "EDIGEST",
              `blob ${expected.digest ?? ""} is larger than its descriptor's ${expected.size} bytes`,
            ),
          );
          return;
        }
        onBytes?.(chunk.length);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(input, meter, createWriteStream(tmp, { mode: 0o644 }));
      const digest = `sha256:${hash.digest("hex")}`;
      if (expected.digest && digest !== expected.digest) {
        throw new MoatError(
          "EDIGEST",
          `blob content does not match its digest: expected ${expected.digest}, got ${digest}; the source is corrupt or was tampered with, and nothing was stored`,
        );
      }
      if (expected.size !== undefined && size !== expected.size) {
        throw new MoatError(
          "EDIGEST",
          `blob ${digest} has ${size} bytes, its descriptor says ${expected.size}: the download was truncated; nothing was stored`,
        );
      }
      await fs.rename(tmp, this.blobPath(digest));
      return { digest, size };
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  }

  /** Store bytes already in memory (manifests, configs). */
  async putBytes(bytes: Buffer, mediaType: string, expectedDigest?: string): Promise<Descriptor> {
    const digest = sha256Digest(bytes);
    if (expectedDigest && expectedDigest !== digest) {
      throw new MoatError(
        "EDIGEST",
        `content does not match its digest: expected ${expectedDigest}, got ${digest}`,
      );
    }
    if (!(await this.hasBlob(digest))) {
      const tmp = path.join(this.ingestDir, `${process.pid}-${randomBytes(8).toString("hex")}`);
      await fs.writeFile(tmp, bytes, { mode: 0o644 });
      await fs.rename(tmp, this.blobPath(digest));
    }
    return { mediaType, digest, size: bytes.length };
  }

  // ---- names (index.json) ----

  async list(): Promise<ImageRecord[]> {
    const index = await this.readIndex();
    return index.manifests
      .filter((d) => d.annotations?.[RefNameAnnotation])
      .map((d) => ({ name: d.annotations![RefNameAnnotation]!, manifest: d }));
  }

  async resolve(name: string): Promise<Descriptor | undefined> {
    return (await this.list()).find((r) => r.name === name)?.manifest;
  }

  /** Point `name` at a manifest, replacing what it named before. */
  async tag(name: string, manifest: Descriptor): Promise<void> {
    await this.withLock(async () => {
      const index = await this.readIndex();
      index.manifests = index.manifests.filter((d) => d.annotations?.[RefNameAnnotation] !== name);
      index.manifests.push({
        mediaType: manifest.mediaType,
        digest: manifest.digest,
        size: manifest.size,
        ...(manifest.platform ? { platform: manifest.platform } : {}),
        annotations: { ...(manifest.annotations ?? {}), [RefNameAnnotation]: name },
      });
      index.manifests.sort((a, b) =>
        (a.annotations?.[RefNameAnnotation] ?? "").localeCompare(b.annotations?.[RefNameAnnotation] ?? ""),
      );
      await this.writeIndex(index);
    });
  }

  /** Remove a name. Returns false when it named nothing. Blobs go at the next gc(). */
  async untag(name: string): Promise<boolean> {
    let found = false;
    await this.withLock(async () => {
      const index = await this.readIndex();
      const kept = index.manifests.filter((d) => d.annotations?.[RefNameAnnotation] !== name);
      found = kept.length !== index.manifests.length;
      if (found) await this.writeIndex({ ...index, manifests: kept });
    });
    return found;
  }

  // ---- leases and garbage collection ----

  /**
   * Protect digests (blobs or layer diffIDs) from gc() while this process uses them. `opts.id`
   * names the lease (a run records it before it is taken); `opts.bundle` is the bundle directory
   * a "bundle" lease keeps alive, so reapLeases() can tell a lease whose bundle is gone.
   */
  async lease(
    digests: string[] = [],
    label = "lease",
    opts: { id?: string; bundle?: string } = {},
  ): Promise<Lease> {
    const id = opts.id ?? `${label}-${process.pid}-${randomBytes(6).toString("hex")}`;
    const file = path.join(this.leasesDir, `${id}.json`);
    const held = new Set(digests);
    const owner = selfRef();
    const write = () =>
      writeFileAtomic(
        file,
        JSON.stringify({
          pid: owner.pid,
          start: owner.start,
          ...(opts.bundle ? { bundle: opts.bundle } : {}),
          digests: [...held],
        }),
      );
    await write();
    return {
      id,
      add: async (more) => {
        for (const d of more) held.add(d);
        await write();
      },
      release: async () => {
        await fs.rm(file, { force: true });
      },
    };
  }

  /**
   * Drop the leases that protect nothing any more, which would otherwise pin their layers
   * against gc() for ever: a lease whose process is dead (no such pid, or one started at
   * another time), except a "bundle" lease while its bundle directory (or the temp directory it
   * is made in) exists, since a bundle outlives the process that made it. A bundle lease of an
   * older moat names no bundle and is kept. Returns the lease ids dropped.
   */
  async reapLeases(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.leasesDir);
    } catch {
      return [];
    }
    const dropped: string[] = [];
    for (const f of names) {
      if (!f.endsWith(".json")) continue;
      const file = path.join(this.leasesDir, f);
      let lease: { pid?: number; start?: string; bundle?: string };
      try {
        lease = JSON.parse(await fs.readFile(file, "utf8"));
      } catch {
        continue;
      }
      if (!lease.pid) continue;
      const start = processStart(lease.pid);
      const alive = start !== undefined && (lease.start === undefined || lease.start === start);
      if (alive) continue;
      if (f.startsWith("bundle-")) {
        if (!lease.bundle) continue;
        const parent = path.dirname(lease.bundle);
        const tmp = `${path.basename(lease.bundle)}.moat-tmp-`;
        const siblings = await fs.readdir(parent).catch(() => [] as string[]);
        if ((await exists(lease.bundle)) || siblings.some((n) => n.startsWith(tmp))) continue;
      }
      await fs.rm(file, { force: true });
      dropped.push(f.slice(0, -5));
    }
    return dropped;
  }

  /** Read a lease written by lease(), by id (bundles keep theirs across processes). */
  leaseFile(id: string): string {
    return path.join(this.leasesDir, `${id}.json`);
  }

  /**
   * Remove every blob and unpacked layer that no name and no live lease reaches. Leases of
   * dead processes are dropped unless they are "bundle" leases, which outlive their creator.
   * With `untag` (rmi), those names leave index.json in the same locked step: every one must
   * exist, else nothing changes; what to keep is worked out before the index is written, so
   * a failure leaves the names in place; and blobs go only once the new index is down, so a
   * crash part-way leaves garbage for the next gc, never a name whose blobs are gone.
   */
  async gc(untag: string[] = []): Promise<GcResult> {
    return this.withLock(async () => {
      const keep = new Set<string>();
      const index = await this.readIndex();
      const nameOf = (d: Descriptor) => d.annotations?.[RefNameAnnotation];
      const missing = untag.filter((n) => !index.manifests.some((d) => nameOf(d) === n));
      if (missing.length) {
        throw new MoatError(
          "ENOENT",
          `no image named ${missing.join(", ")}: nothing was removed; moat images lists what is there`,
        );
      }
      const named = index.manifests.filter((d) => !untag.includes(nameOf(d) ?? ""));
      const roots: string[] = [];
      for (const f of await fs.readdir(this.leasesDir)) {
        if (!f.endsWith(".json")) continue;
        const leasePath = path.join(this.leasesDir, f);
        let lease: { pid?: number; digests?: string[] };
        try {
          lease = JSON.parse(await fs.readFile(leasePath, "utf8"));
        } catch {
          continue;
        }
        const durable = f.startsWith("bundle-");
        if (!durable && lease.pid && !pidAlive(lease.pid)) {
          await fs.rm(leasePath, { force: true });
          continue;
        }
        for (const d of lease.digests ?? []) {
          keep.add(d);
          roots.push(d);
        }
      }
      // Follow descriptors only (reachable.ts): index.json's by media type, leases' by content.
      const reached = await reachable(
        [
          ...named.map((d) => ({ digest: d.digest, mediaType: d.mediaType })),
          ...roots.map((d) => ({ digest: d })),
        ],
        (d) => this.readDoc(d),
      );
      for (const d of reached) keep.add(d);
      if (named.length !== index.manifests.length) await this.writeIndex({ ...index, manifests: named });
      let blobs = 0;
      let layers = 0;
      let bytes = 0;
      const blobDir = path.join(this.layoutDir, "blobs", "sha256");
      for (const hex of await fs.readdir(blobDir)) {
        if (keep.has(`sha256:${hex}`)) continue;
        const p = path.join(blobDir, hex);
        bytes += (await fs.stat(p)).size;
        await fs.rm(p, { force: true });
        blobs++;
      }
      for (const name of await fs.readdir(this.layersDir)) {
        // "<hex>" is an unpacked layer, "<hex>.tmp-*" one being unpacked: both stay while
        // an image, a bundle or a live unpack (which leases the diffID) needs that layer.
        const hex = name.slice(0, 64);
        if (/^[a-f0-9]{64}$/.test(hex) && keep.has(`sha256:${hex}`)) continue;
        await fs.rm(path.join(this.layersDir, name), { recursive: true, force: true });
        layers++;
      }
      // Temp files of crashed writers.
      for (const f of await fs.readdir(this.ingestDir)) {
        const pid = Number(f.split("-")[0]);
        if (!pidAlive(pid)) await fs.rm(path.join(this.ingestDir, f), { force: true });
      }
      return { blobs, layers, bytes };
    });
  }

  /** A small JSON blob for reachable(): undefined if absent, over 4 MiB or not JSON. */
  private async readDoc(digest: string): Promise<unknown> {
    let bytes: Buffer;
    try {
      const p = this.blobPath(digest);
      if ((await fs.stat(p)).size > 4 * 1024 * 1024) return undefined;
      bytes = await fs.readFile(p);
    } catch (e) {
      // A missing blob reaches nothing; any other read error stops gc before it deletes.
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    if (bytes[0] !== 0x7b /* '{' */) return undefined;
    try {
      return JSON.parse(bytes.toString("utf8"));
    } catch {
      return undefined;
    }
  }

  // ---- internals ----

  private async readIndex(): Promise<ImageIndex> {
    const file = path.join(this.layoutDir, "index.json");
    try {
      const index = JSON.parse(await fs.readFile(file, "utf8")) as ImageIndex;
      if (!Array.isArray(index.manifests)) throw new Error("no manifests array");
      return index;
    } catch (e) {
      throw (
        notPermitted(e, this.root) ??
        new MoatError(
          "EIO",
          `the image index ${file} is unreadable (${(e as Error).message}): restore it or remove the store root to start over`,
        )
      );
    }
  }

  private async writeIndex(index: ImageIndex): Promise<void> {
    await writeFileAtomic(path.join(this.layoutDir, "index.json"), `${JSON.stringify(index, null, 2)}\n`);
  }

  /** Run fn holding the store-wide lock (index.json and gc). Waits for other processes. */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const release = await lockfile.lock(this.layoutDir, {
      lockfilePath: path.join(this.root, "store.lock"),
      retries: { retries: 200, minTimeout: 20, maxTimeout: 250 },
      stale: 30_000,
    });
    try {
      return await fn();
    } finally {
      await release();
    }
  }
}

/** A permission error on the store root said as what to do, not as a raw EACCES. */
function notPermitted(e: unknown, root: string): MoatError | undefined {
  const err = e as NodeJS.ErrnoException;
  if (err.code !== "EACCES" && err.code !== "EPERM") return undefined;
  const who = typeof process.getuid === "function" ? `user ${process.getuid()}` : "this user";
  return new MoatError(
    "EACCES",
    `the store at ${root} is not writable by ${who} (${err.code} on ${err.path ?? root}): run moat as root (sudo), or pass --root DIR (or set MOAT_ROOT=DIR) to a directory you own`,
    { cause: e },
  );
}

/** lstat succeeds: the path exists (a dangling symlink counts). */
export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}
