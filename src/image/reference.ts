// Image references ("busybox", "localhost:5000/team/app:1.2", "ghcr.io/x/y@sha256:...")
// parsed with the docker/distribution grammar and Docker's normalisation, so that a name
// means the same image in moat as it does in docker, podman and containerd.
import { MoatError } from "../spec/errors.js";

export interface Reference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

export const DEFAULT_REGISTRY = "docker.io";
export const DEFAULT_TAG = "latest";

const EXAMPLE = 'valid examples: "busybox", "busybox:1.36", "localhost:5000/team/app@sha256:<64 hex digits>"';

// One DNS label, optionally joined by dots, optionally with a port; or a bracketed IPv6
// literal with an optional port.
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_RE = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`,
);
// Lowercase alphanumerics joined by ".", "_", "__" or runs of "-".
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_HEX: Record<string, number> = { sha256: 64, sha512: 128 };
const MAX_NAME_LENGTH = 255;

function invalid(text: string, what: string): MoatError {
  return new MoatError("EINVAL", `invalid image reference ${JSON.stringify(text)}: ${what}; ${EXAMPLE}`);
}

/** Checks "algo:hex" and returns it unchanged, or throws EINVAL naming the problem. */
export function checkDigest(digest: string, context = digest): string {
  const colon = digest.indexOf(":");
  if (colon <= 0) {
    throw invalid(
      context,
      `digest ${JSON.stringify(digest)} must look like "sha256:<64 lowercase hex digits>"`,
    );
  }
  const algo = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const length = DIGEST_HEX[algo];
  if (length === undefined) {
    throw invalid(
      context,
      `digest algorithm ${JSON.stringify(algo)} is not supported (use sha256 or sha512)`,
    );
  }
  if (hex.length !== length || !/^[0-9a-f]+$/.test(hex)) {
    throw invalid(context, `a ${algo} digest needs exactly ${length} lowercase hex digits after "${algo}:"`);
  }
  return digest;
}

function isRegistryComponent(first: string): boolean {
  return first.includes(".") || first.includes(":") || first === "localhost";
}

export function parseReference(text: string): Reference {
  if (typeof text !== "string" || text.length === 0) throw invalid(String(text), "it is empty");
  if (text !== text.trim() || /\s/.test(text)) throw invalid(text, "it contains white space");

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = checkDigest(rest.slice(at + 1), text);
    rest = rest.slice(0, at);
  }

  // A tag follows the last ":" that comes after the last "/" (a ":" before it is a port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.indexOf(":", lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      throw invalid(
        text,
        `tag ${JSON.stringify(tag)} must be 1 to 128 letters, digits, "_", "." or "-" and not start with "." or "-"`,
      );
    }
  }

  if (rest.length === 0) throw invalid(text, "the repository name is missing");
  if (rest.length > MAX_NAME_LENGTH) {
    throw invalid(text, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  }

  let registry = DEFAULT_REGISTRY;
  let repository = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0 && isRegistryComponent(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    repository = rest.slice(slash + 1);
    if (!DOMAIN_RE.test(registry)) {
      throw invalid(
        text,
        `registry ${JSON.stringify(registry)} is not a valid host name with optional :port`,
      );
    }
  }
  if (registry === "index.docker.io") registry = DEFAULT_REGISTRY;

  if (repository.length === 0) throw invalid(text, "the repository name is missing");
  for (const component of repository.split("/")) {
    if (!PATH_COMPONENT_RE.test(component)) {
      const hint =
        component.toLowerCase() !== component
          ? "repository names must be lowercase"
          : 'each part between "/" must be lowercase letters and digits, joined by ".", "_", "__" or "-"';
      throw invalid(text, `repository ${JSON.stringify(repository)}: ${hint}`);
    }
  }
  if (registry === DEFAULT_REGISTRY && !repository.includes("/")) {
    // Docker refuses bare 64-hex names because they are indistinguishable from image IDs.
    if (/^[a-f0-9]{64}$/.test(repository)) {
      throw invalid(
        text,
        "a 64-hex-digit name looks like an image ID; refer to images by name or by @sha256:...",
      );
    }
    repository = `library/${repository}`;
  }

  const ref: Reference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (tag === undefined && digest === undefined) ref.tag = DEFAULT_TAG;
  return ref;
}

function suffix(r: Reference): string {
  return `${r.tag !== undefined ? `:${r.tag}` : ""}${r.digest !== undefined ? `@${r.digest}` : ""}`;
}

/** The canonical, fully qualified form: parseReference(formatReference(r)) equals r. */
export function formatReference(r: Reference): string {
  return `${r.registry}/${r.repository}${suffix(r)}`;
}

/** The short form docker shows: "busybox:latest", "user/app:1", "quay.io/x/y:2". */
export function familiarName(r: Reference): string {
  if (r.registry !== DEFAULT_REGISTRY) return formatReference(r);
  const short = r.repository.startsWith("library/") ? r.repository.slice("library/".length) : r.repository;
  // "library/a/b" stays as is: stripping "library/" would make it a different user repository.
  const name = short.includes("/") && r.repository.startsWith("library/") ? r.repository : short;
  // "docker.io/a.b/c" must keep its registry, or "a.b" would be read back as one.
  const first = name.split("/")[0]!;
  if (name.includes("/") && isRegistryComponent(first)) return formatReference(r);
  return `${name}${suffix(r)}`;
}

/** The host that actually serves the registry API for a registry name. */
export function registryApiHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? "registry-1.docker.io" : registry;
}

/** True for a repository path ("library/busybox") that is safe to put into a registry URL. */
export function isValidRepository(repository: string): boolean {
  return (
    repository.length > 0 &&
    repository.length <= MAX_NAME_LENGTH &&
    repository.split("/").every((c) => PATH_COMPONENT_RE.test(c))
  );
}

/** True for "host", "host:port" or "[v6]:port" as a registry name. */
export function isValidRegistryHost(registry: string): boolean {
  return DOMAIN_RE.test(registry);
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}
