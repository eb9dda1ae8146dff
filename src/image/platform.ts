// Platform strings ("linux/amd64", "linux/arm64/v8") and choosing one manifest from an index.
import { MoatError } from "../spec/errors.js";
import type { Descriptor, Image, Platform } from "../spec/image.js";

export const DEFAULT_PLATFORM: Platform = { os: "linux", architecture: "amd64" };

export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new MoatError(
      "EINVAL",
      `platform "${text}" is not of the form os/arch[/variant], e.g. linux/amd64`,
    );
  }
  const [os, architecture, variant] = parts as [string, string, string?];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** Pick the manifest for `want` from an index's entries; variant is matched only when asked. */
export function selectPlatform(manifests: Descriptor[], want: Platform): Descriptor {
  const match = manifests.find(
    (m) =>
      m.platform &&
      m.platform.os === want.os &&
      m.platform.architecture === want.architecture &&
      (!want.variant || m.platform.variant === want.variant),
  );
  if (!match) {
    const have = manifests.map((m) => (m.platform ? formatPlatform(m.platform) : "unknown")).join(", ");
    throw new MoatError(
      "ENOPLATFORM",
      `the image has no ${formatPlatform(want)} variant (it has: ${have || "none"}): choose one with --platform`,
    );
  }
  return match;
}

/** Refuse an image whose config is not for `want` (docker's wording); variant only when asked. */
export function checkImagePlatform(ref: string, image: Image, want: Platform): void {
  const actual: Platform = {
    os: image.os,
    architecture: image.architecture,
    ...(image.variant ? { variant: image.variant } : {}),
  };
  if (
    actual.os === want.os &&
    actual.architecture === want.architecture &&
    (!want.variant || actual.variant === want.variant)
  )
    return;
  throw new MoatError(
    "ENOPLATFORM",
    `image with reference ${ref} was found but does not match the specified platform: wanted ${formatPlatform(want)}, actual: ${formatPlatform(actual)}; it is a single-platform image, so pull it without --platform or choose another image`,
  );
}
