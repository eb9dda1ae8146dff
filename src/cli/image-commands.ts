// moat pull / images / rmi / load / save / bundle / gc: the image side of the CLI.
import { loadArchive, saveImages } from "../image/archive.js";
import { createBundle, removeBundle } from "../image/bundle.js";
import { DEFAULT_IMAGE, DEFAULT_IMAGE_ALIASES, ensureDefaultImage } from "../image/default-image.js";
import { parsePlatform } from "../image/platform.js";
import { type PullEvent, pull } from "../image/pull.js";
import { formatReference, parseReference } from "../image/reference.js";
import type { ImageStore } from "../image/store.js";
import { MoatError } from "../spec/errors.js";
import type { Image, ImageManifest } from "../spec/image.js";
import { BUNDLE, LOAD, PULL, RMI, SAVE } from "./command-specs.js";
import { parseCommand } from "./flags.js";
import { humanSize, type Output } from "./output.js";

/** Turn what a person typed into the store's full name; "default" means the built-in image. */
export async function imageName(store: ImageStore, text: string): Promise<string> {
  if (DEFAULT_IMAGE_ALIASES.includes(text)) return ensureDefaultImage(store);
  if (text.startsWith("sha256:")) return text;
  return formatReference(parseReference(text));
}

export async function cmdPull(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(PULL, argv);
  if (positionals.length !== 1)
    throw new MoatError(
      "EINVAL",
      "usage: moat pull [--platform os/arch] [--insecure] [--creds user:pass] IMAGE",
    );
  const credentials = parseCreds(values.creds ?? process.env.MOAT_REGISTRY_CREDS);
  const layers = new Map<string, { size: number; current: number; state: string }>();
  const render = () =>
    out.live(
      [...layers.entries()].map(
        ([d, l]) =>
          `${d.slice(7, 19)}  ${l.state.padEnd(11)} ${humanSize(l.current).padStart(9)} / ${humanSize(l.size)}`,
      ),
    );
  const onEvent = (e: PullEvent) => {
    out.event({ ...e });
    if (e.type === "layer") {
      const l = layers.get(e.digest) ?? { size: e.size, current: 0, state: e.state };
      l.state = e.state;
      if (e.state === "done" || e.state === "exists") l.current = e.size;
      layers.set(e.digest, l);
      render();
    } else if (e.type === "progress") {
      const l = layers.get(e.digest);
      if (l) l.current = e.current;
      render();
    }
  };
  const res = await pull(store, positionals[0]!, {
    ...(values.platform ? { platform: parsePlatform(values.platform) } : {}),
    ...(values.insecure ? { insecure: true } : {}),
    ...(credentials ? { credentials } : {}),
    onEvent,
  });
  out.done();
  out.result({ pulled: res.name, digest: res.manifest.digest }, `${res.name}  ${res.manifest.digest}`);
  return 0;
}

export async function cmdImages(store: ImageStore, _argv: string[], out: Output): Promise<number> {
  const list = await store.list();
  const now = Date.now();
  const infos = [];
  for (const r of list) infos.push({ r, ...(await imageFacts(store, r.manifest.digest)) });
  if (out.json) {
    for (const { r, created, size } of infos)
      out.result(
        {
          name: r.name,
          digest: r.manifest.digest,
          platform: r.manifest.platform,
          created: created ?? null,
          size: size ?? null,
        },
        "",
      );
    return 0;
  }
  const rows = [["NAME", "DIGEST", "PLATFORM", "CREATED", "SIZE"]];
  for (const { r, created, size } of infos) {
    const p = r.manifest.platform;
    const t = created ? Date.parse(created) : Number.NaN;
    rows.push([
      r.name,
      r.manifest.digest.slice(0, 19),
      p ? `${p.os}/${p.architecture}` : "",
      Number.isNaN(t) ? "N/A" : `${humanDuration(now - t)} ago`,
      size === undefined ? "N/A" : humanSize(size),
    ]);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((c, i) => c.padEnd(w[i]!))
        .join("  ")
        .trimEnd()}\n`,
    );
  return 0;
}

/**
 * An image's age and size for `moat images`. The size is what the store holds for it: its
 * compressed layers plus its config, as the manifest gives them (what a pull downloads);
 * docker shows the unpacked size instead. A blob that cannot be read leaves the field out.
 */
async function imageFacts(store: ImageStore, digest: string): Promise<{ created?: string; size?: number }> {
  try {
    const manifest = await store.readJson<ImageManifest>(digest);
    const size = manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0);
    const image = await store.readJson<Image>(manifest.config.digest);
    return { size, ...(typeof image.created === "string" ? { created: image.created } : {}) };
  } catch {
    return {};
  }
}

/** "3 days", "About an hour": docker's wording for an age (go-units HumanDuration). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const minutes = Math.floor(ms / 60_000);
  const hours = Math.round(ms / 3_600_000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

export async function cmdRmi(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { positionals } = parseCommand(RMI, argv);
  if (positionals.length === 0) throw new MoatError("EINVAL", "usage: moat rmi IMAGE...");
  const names = [
    ...new Set(
      positionals.map((p) =>
        DEFAULT_IMAGE_ALIASES.includes(p) ? DEFAULT_IMAGE : formatReference(parseReference(p)),
      ),
    ),
  ];
  // Untag and free in one locked step: a name that is not there changes nothing.
  const gc = await store.gc(names);
  for (const name of names) out.result({ untagged: name }, `untagged ${name}`);
  out.result(
    { removed: gc },
    `removed ${gc.blobs} blobs (${humanSize(gc.bytes)}) and ${gc.layers} unpacked layers`,
  );
  return 0;
}

export async function cmdGc(store: ImageStore, _argv: string[], out: Output): Promise<number> {
  const gc = await store.gc();
  out.result(
    { removed: gc },
    `removed ${gc.blobs} blobs (${humanSize(gc.bytes)}) and ${gc.layers} unpacked layers`,
  );
  return 0;
}

export async function cmdLoad(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(LOAD, argv);
  const source = values.input ?? positionals[0];
  if (!source) throw new MoatError("EINVAL", "usage: moat load [-i] FILE.tar|LAYOUT-DIR [--name REF]");
  const names = await loadArchive(store, source, {
    ...(values.name ? { name: values.name } : {}),
    ...(values.platform ? { platform: parsePlatform(values.platform) } : {}),
  });
  for (const n of names) out.result({ loaded: n }, `loaded ${n}`);
  return 0;
}

export async function cmdSave(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(SAVE, argv);
  if (!values.output || positionals.length === 0) {
    throw new MoatError("EINVAL", "usage: moat save -o OUT.tar|OUT-DIR [--dir] IMAGE...");
  }
  const names = [];
  for (const p of positionals) names.push(await imageName(store, p));
  await saveImages(store, names, values.output, { directory: Boolean(values.dir) });
  out.result({ saved: names, output: values.output }, `saved ${names.join(", ")} to ${values.output}`);
  return 0;
}

export async function cmdBundle(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals, command } = parseCommand(BUNDLE, argv);
  if (values.remove) {
    if (positionals.length + command.length !== 1)
      throw new MoatError("EINVAL", "usage: moat bundle --remove DIR");
    const dir = positionals[0] ?? command[0]!;
    await removeBundle(dir);
    out.result({ removed: dir }, `removed bundle ${dir}`);
    return 0;
  }
  if (positionals.length < 2)
    throw new MoatError("EINVAL", "usage: moat bundle [--rootfs-mode overlay|copy] IMAGE DIR [CMD...]");
  const mode = values["rootfs-mode"];
  if (mode && !["overlay", "copy", "auto"].includes(mode)) {
    throw new MoatError("EINVAL", `--rootfs-mode must be overlay, copy or auto, not "${mode}"`);
  }
  const [image, dir] = positionals as [string, string];
  const args = command;
  const b = await createBundle(store, await imageName(store, image), dir, {
    ...(mode ? { rootfsMode: mode as "overlay" | "copy" | "auto" } : {}),
    ...(args.length ? { args } : {}),
    ...(values.user ? { user: values.user } : {}),
    ...(values.workdir ? { cwd: values.workdir } : {}),
    ...(values.env ? { env: values.env } : {}),
    ...(values.tty ? { terminal: true } : {}),
    ...(values.hostname ? { hostname: values.hostname } : {}),
  });
  out.result(
    { bundle: b.dir, rootfs: b.rootfs, mode: b.mode, image: b.image, digest: b.manifestDigest },
    `bundle ${b.dir} (rootfs: ${b.mode}) from ${b.image}`,
  );
  return 0;
}

function parseCreds(text: string | undefined): { username: string; password: string } | undefined {
  if (!text) return undefined;
  const i = text.indexOf(":");
  if (i <= 0) throw new MoatError("EINVAL", "--creds must be user:password");
  return { username: text.slice(0, i), password: text.slice(i + 1) };
}
