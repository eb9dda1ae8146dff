// Layer blobs arrive compressed; the unpacker wants the plain tar (the diffID is the hash of
// the uncompressed bytes). This picks the decompressor from the layer's media type.
import { Readable, Transform, type TransformCallback } from "node:stream";
import { createGunzip } from "node:zlib";
import { Decompress } from "fzstd";
import { isMoatError, MoatError } from "../spec/errors.js";

export type LayerCompression = "gzip" | "zstd" | "none";

/** Which compression a layer media type announces; undefined when moat does not know the type. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  // OCI: ...layer.v1.tar[+gzip|+zstd] (also the nondistributable variants); Docker: ...diff.tar.gzip
  if (mediaType.endsWith("+gzip") || mediaType.endsWith(".tar.gzip")) return "gzip";
  if (mediaType.endsWith("+zstd")) return "zstd";
  if (mediaType.endsWith(".tar")) return "none";
  return undefined;
}

/**
 * The uncompressed tar of a layer blob. Errors of `input` pass through unchanged; a corrupt or
 * truncated compressed stream fails the returned stream with MoatError("EIO"). Attach an
 * error listener (or start reading) promptly: an error of `input` is re-emitted on it.
 */
export function decompressStream(mediaType: string, input: Readable): Readable {
  const kind = layerCompression(mediaType);
  if (kind === undefined) {
    input.destroy();
    throw new MoatError(
      "ENOTSUP",
      `layer media type "${mediaType}" is not supported: moat unpacks tar layers that are plain, gzip or zstd compressed; rebuild or convert the image with one of those`,
    );
  }
  if (kind === "none") return input;
  const decoder = kind === "gzip" ? createGunzip() : zstdDecoder();
  return chain(input, decoder, kind);
}

function zstdDecoder(): Transform {
  let decoder: Decompress;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      try {
        decoder.push(chunk);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb: TransformCallback) {
      try {
        // An empty final push makes fzstd throw if the input stopped inside a frame.
        decoder.push(new Uint8Array(0), true);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
  decoder = new Decompress((data) => {
    // fzstd may hand out views of its own window buffer: copy before it is reused.
    if (data.length > 0) t.push(Buffer.from(data));
  });
  return t;
}

// One stream whose error says what went wrong (the source's own error, or "corrupt compressed
// data"). Nothing flows until the consumer first reads, so a decoder error cannot fire before
// anyone listens; a consumer that gives up early tears the whole chain down.
function chain(input: Readable, decoder: Transform, kind: LayerCompression): Readable {
  let started = false;
  const out = new Readable({
    read() {
      if (started) {
        decoder.resume();
        return;
      }
      started = true;
      decoder.on("error", (e: Error) => out.destroy(decodeError(e, kind)));
      decoder.on("data", (chunk: Buffer) => {
        if (!out.push(chunk)) decoder.pause();
      });
      decoder.on("end", () => out.push(null));
      input.pipe(decoder);
    },
    destroy(err, cb) {
      input.destroy();
      decoder.destroy();
      cb(err);
    },
  });
  input.on("error", (e: Error) => out.destroy(e));
  return out;
}

function decodeError(e: Error, kind: LayerCompression): MoatError {
  if (isMoatError(e)) return e;
  return new MoatError(
    "EIO",
    `layer data is not valid ${kind} (${e.message}): the blob is corrupt or truncated; remove it from the store and pull the image again`,
    { cause: e },
  );
}
