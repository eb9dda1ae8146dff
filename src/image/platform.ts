// Platform strings ("linux/amd64", "linux/arm64/v8") and choosing one manifest from an index.
import { MoatError } from "../spec/errors.js";
import type { Descriptor, Platform } from "../spec/image.js";

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
