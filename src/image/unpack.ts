// Unpack one layer (an uncompressed tar stream) into a new overlayfs-style layer directory.
// All or nothing: the layer is written into a temp sibling and renamed into place only when
// every entry was written and the tar's sha256 matched the expected diffID; on any failure
// the temp directory is removed and nothing is left behind.
import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { extract as tarExtract } from "tar-stream";
import { isMoatError, MoatError } from "../spec/errors.js";
import { syncfs } from "../sys/fs.js";
import { RawPaxScanner } from "./unpack-pax.js";
import { type EntryHeader, LayerTree } from "./unpack-tree.js";

export interface UnpackOptions {
  /** The uncompressed layer tar (see decompressStream). */
  input: Readable;
  /** The layer directory to create; it must not exist yet. */
  dest: string;
  /** "sha256:<hex>" of the uncompressed tar; a mismatch fails the unpack with EDIGEST. */
  expectedDiffId?: string;
  /** Called as tar bytes are read, with the total uncompressed bytes so far. */
  onProgress?(bytes: number): void;
  /** Called at the end with what was left out (xattrs moat does not restore, aufs metadata). */
  onWarning?(message: string): void;
}

export interface UnpackResult {
  /** "sha256:<hex>" of the uncompressed tar. */
  diffId: string;
  /** Bytes of the uncompressed tar. */
  size: number;
}

export async function unpackLayer(opts: UnpackOptions): Promise<UnpackResult> {
  // The input may fail before reading starts (a blob that cannot be opened): keep that error
  // for the reader below instead of letting it crash the process as an unhandled 'error'.
  opts.input.on("error", () => {});
  const dest = path.resolve(opts.dest);
  if (opts.expectedDiffId !== undefined && !/^sha256:[0-9a-f]{64}$/.test(opts.expectedDiffId)) {
    opts.input.destroy();
    throw new MoatError(
      "EINVAL",
      `expected diffID ${JSON.stringify(opts.expectedDiffId)} is not of the form sha256:<64 hex digits>: the image config is malformed`,
    );
  }
  if (await exists(dest)) {
    opts.input.destroy();
    throw new MoatError(
      "EEXIST",
      `layer directory ${dest} already exists: remove it or unpack into a new directory`,
    );
  }
  const tmp = `${dest}.tmp-${randomBytes(8).toString("hex")}`;
  try {
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.mkdir(tmp, { mode: 0o755 });
    await fs.chmod(tmp, 0o755);
    const tree = new LayerTree(tmp, opts.onWarning);
    const result = await extractInto(tree, opts.input, opts.onProgress);
    if (opts.expectedDiffId !== undefined && result.diffId !== opts.expectedDiffId) {
      throw new MoatError(
        "EDIGEST",
        `layer content has diffID ${result.diffId} but the image says ${opts.expectedDiffId}: the blob is corrupt or was tampered with; remove it from the store and pull the image again`,
      );
    }
    await tree.finish();
    // The store trusts a layer directory that exists: make its contents durable before the
    // rename publishes it, and the rename durable after.
    await flushFilesystem(tmp);
    try {
      await fs.rename(tmp, dest);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ENOTEMPTY" || code === "EEXIST") {
        throw new MoatError(
          "EEXIST",
          `layer directory ${dest} appeared while unpacking: another unpack of the same layer won`,
        );
      }
      throw e;
    }
    await fsyncDir(path.dirname(dest));
    return result;
  } catch (e) {
    opts.input.destroy();
    await fs.rm(tmp, { recursive: true, force: true });
    if (isMoatError(e)) throw e;
    throw new MoatError(
      "EIO",
      `unpacking a layer into ${dest} failed (${(e as Error).message}): check that the image store is writable and has free space`,
      { cause: e },
    );
  }
}

async function extractInto(
  tree: LayerTree,
  input: Readable,
  onProgress: ((bytes: number) => void) | undefined,
): Promise<UnpackResult> {
  const hash = createHash("sha256");
  let size = 0;
  const extract = tarExtract();
  const rawPax = new RawPaxScanner();

  // Feed the tar parser by hand (it is a streamx stream, not a Node one), hashing every byte
  // on the way: the diffID covers the whole tar, padding and trailer included.
  let pumpError: unknown;
  const pump = (async () => {
    try {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        onProgress?.(size);
        rawPax.push(chunk); // before tar-stream sees it, so its records are ready for the entry
        if (!extract.write(chunk)) await writable(extract);
        if (extract.destroyed) return;
      }
      extract.end(null);
    } catch (e) {
      pumpError = e;
      extract.destroy(e as Error);
      throw e;
    }
  })();
  pump.catch(() => {});

  let index = 0;
  try {
    for await (const entry of extract) {
      const header = entry.header as unknown as EntryHeader;
      try {
        // streamx streams are async iterable at run time; its typings omit it.
        await tree.add(header, bodyOf(entry as unknown as AsyncIterable<Buffer>), rawPax.take(index++));
      } catch (e) {
        // A failing body is the tar stream failing (truncated, corrupt), not the write.
        if (e instanceof BodyError) throw e.cause;
        throw entryError(header.name, e);
      }
    }
    await pump;
  } catch (e) {
    // Taken before the teardown below, which makes the pump fail too.
    const readError = pumpError;
    extract.destroy();
    input.destroy();
    await pump.catch(() => {});
    if (readError !== undefined) {
      if (isMoatError(readError)) throw readError;
      throw new MoatError(
        "EIO",
        `reading the layer data failed (${(readError as Error).message}): check the image store, then pull the image again`,
        { cause: readError },
      );
    }
    if (isMoatError(e)) throw e;
    throw new MoatError(
      "EIO",
      `layer is not a valid tar archive (${(e as Error).message}): the blob is corrupt or truncated; remove it from the store and pull the image again`,
      { cause: e },
    );
  }
  return { diffId: `sha256:${hash.digest("hex")}`, size };
}

class BodyError extends Error {
  constructor(override readonly cause: unknown) {
    super("layer entry content could not be read");
  }
}

async function* bodyOf(entry: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of entry) yield chunk;
  } catch (e) {
    throw new BodyError(e);
  }
}

function entryError(name: string, e: unknown): MoatError {
  if (isMoatError(e)) return e;
  return new MoatError(
    "EIO",
    `writing layer entry ${JSON.stringify(name)} failed (${(e as Error).message}): check free space and permissions of the image store`,
    { cause: e },
  );
}

function writable(s: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      s.off("drain", done);
      s.off("close", done);
      resolve();
    };
    s.on("drain", done);
    s.on("close", done);
  });
}

async function flushFilesystem(dir: string): Promise<void> {
  const fh = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    syncfs(fh.fd);
  } finally {
    await fh.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return false;
    throw e;
  }
}
