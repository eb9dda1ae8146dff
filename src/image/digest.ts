// Content digests ("sha256:<hex>"): the names of everything in the store.
import { createHash } from "node:crypto";
import { MoatError } from "../spec/errors.js";

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Validate a digest from untrusted input (a manifest, an index, a user) before it names a file. */
export function checkDigest(digest: string, what = "digest"): string {
  if (!DIGEST_RE.test(digest)) {
    throw new MoatError(
      "EINVAL",
      `${what} "${digest}" is not a sha256 digest: moat accepts only "sha256:" followed by 64 lowercase hex digits`,
    );
  }
  return digest;
}

export function digestHex(digest: string): string {
  return checkDigest(digest).slice("sha256:".length);
}
