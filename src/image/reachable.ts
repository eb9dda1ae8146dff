// What garbage collection keeps: every blob and unpacked layer a root reaches. Only
// descriptors are followed (an index's manifests; a manifest's config and layers), chosen by
// media type, never by the shape of arbitrary JSON: an image config's own `config` object
// (Env, Cmd, ...) is not a descriptor. Roots from leases carry no media type, so for them the
// blob's own mediaType field, or failing that its form, says what it is.
import {
  type Descriptor,
  type Image,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  isManifestMediaType,
} from "../spec/image.js";

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** A JSON document of the store: undefined when the blob is absent, too big or not JSON. */
export type ReadDoc = (digest: string) => Promise<unknown>;

export interface Root {
  digest: string;
  /** From index.json; absent for lease digests. */
  mediaType?: string;
}

type Kind = "index" | "manifest" | "config" | "leaf";

/** Every digest (blob or layer diffID) reachable from roots. */
export async function reachable(roots: Root[], readDoc: ReadDoc): Promise<Set<string>> {
  const keep = new Set<string>();
  const seen = new Set<string>();
  const todo: Array<{ digest: string; kind: Kind | undefined }> = roots.map((r) => ({
    digest: r.digest,
    kind: kindOf(r.mediaType),
  }));
  const push = (d: Descriptor | undefined, kind: Kind | undefined) => {
    if (d && typeof d.digest === "string") todo.push({ digest: d.digest, kind });
  };
  while (todo.length) {
    const { digest, kind } = todo.pop()!;
    if (typeof digest !== "string" || !DIGEST_RE.test(digest)) continue;
    keep.add(digest);
    if (kind === "leaf" || seen.has(`${kind}:${digest}`)) continue;
    seen.add(`${kind}:${digest}`);
    const doc = await readDoc(digest);
    if (!isObject(doc)) continue;
    const what = kind ?? sniff(doc);
    if (what === "index") {
      for (const m of (doc as Partial<ImageIndex>).manifests ?? [])
        push(m, kindOf(m?.mediaType) ?? "manifest");
    } else if (what === "manifest") {
      const m = doc as Partial<ImageManifest>;
      push(m.config, "config");
      for (const l of m.layers ?? []) push(l, "leaf");
    } else if (what === "config") {
      // The diffIDs name the unpacked layers under layers/sha256/.
      const ids = (doc as Partial<Image>).rootfs?.diff_ids;
      for (const id of Array.isArray(ids) ? ids : []) if (typeof id === "string") keep.add(id);
    }
  }
  return keep;
}

function kindOf(mediaType: string | undefined): Kind | undefined {
  if (mediaType === undefined) return undefined;
  if (isIndexMediaType(mediaType)) return "index";
  if (isManifestMediaType(mediaType)) return "manifest";
  // Anything else a root names directly (an artifact, a layer) is kept but not entered.
  return "leaf";
}

/** What a blob named without a media type is, from its mediaType field or its form. */
function sniff(doc: Record<string, unknown>): Kind {
  const own = typeof doc.mediaType === "string" ? kindOf(doc.mediaType) : undefined;
  if (own === "index" || own === "manifest") return own;
  if (Array.isArray(doc.manifests)) return "index";
  const config = doc.config as { digest?: unknown } | undefined;
  if (Array.isArray(doc.layers) && isObject(config) && typeof config.digest === "string") return "manifest";
  if (isObject(doc.rootfs)) return "config";
  return "leaf";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
