// Names inside a layer tar are written by whoever built the image: untrusted. This turns one
// into the list of path components it may occupy under the layer root, or says why not.

export type SplitName = { ok: true; parts: string[] } | { ok: false; reason: string };

/**
 * Split a tar entry name (or hardlink target) into safe components. `[]` is the layer root
 * itself ("./"). Refused: NUL bytes, absolute paths, any ".." component, the empty name.
 */
export function splitEntryName(raw: string): SplitName {
  if (raw.length === 0) return { ok: false, reason: "has an empty name" };
  if (raw.includes("\0")) return { ok: false, reason: "contains a NUL byte" };
  if (raw.startsWith("/")) return { ok: false, reason: "is an absolute path" };
  const parts: string[] = [];
  for (const part of raw.split("/")) {
    // "a//b", "./a" and "a/./b" name the same place as "a/b": tar tools write all of them.
    if (part === "" || part === ".") continue;
    if (part === "..") return { ok: false, reason: "contains a '..' component" };
    parts.push(part);
  }
  return { ok: true, parts };
}

/** The overlayfs spelling of OCI whiteouts. */
export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";
export const OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque";
