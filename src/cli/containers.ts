// Where moat's own (docker-like) containers live under moat's root, and how a person names
// them. The containers themselves are the OCI layer's (src/oci/api.ts), under their own state
// root, so `moat run -d` and the runc commands share one monitor and one state format.
//
//   ROOT/containers/<id>/   the OCI state directory (state.json, monitor socket and log)
//   ROOT/bundles/<id>/      the bundle made from the image
//   ROOT/logs/<id>.log      the container's stdout and stderr
//   ROOT/names/<name>       holds the id: created exclusively, so two runs cannot take one name
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { listContainers } from "../oci/api.js";
import { MoatError } from "../spec/errors.js";

/** Annotations moat writes into the bundle's config.json, read back by `moat ps`. */
export const NAME_ANNOTATION = "run.moat.name";
export const IMAGE_ANNOTATION = "run.moat.image";

export const stateRoot = (root: string): string => path.join(root, "containers");
export const bundleDir = (root: string, id: string): string => path.join(root, "bundles", id);
export const logFile = (root: string, id: string): string => path.join(root, "logs", `${id}.log`);
const namesDir = (root: string): string => path.join(root, "names");

const ID_RE = /^[0-9a-f]{32}$/;
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/**
 * A fresh id: 32 hex digits (128 random bits), shown as the first 12 as docker does. Not
 * docker's 64: the vm's sockets live under ROOT/containers/<id>/ and must fit in sun_path.
 */
export function newId(): string {
  return randomBytes(16).toString("hex");
}

export const shortId = (id: string): string => id.slice(0, 12);

export function validateName(name: string): string {
  if (!NAME_RE.test(name) || ID_RE.test(name)) {
    throw new MoatError(
      "EINVAL",
      `--name "${name}" is not a valid name: use 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit (and not 32 hex digits, which read as an id)`,
    );
  }
  return name;
}

function exists(p: string): boolean {
  return fs.existsSync(p);
}

/**
 * Take a name for a container. The name file is created with O_EXCL, so of two runs racing
 * for one name exactly one wins. A name whose container is gone (removed behind moat's back
 * with the runc commands) is taken over.
 */
export async function claimName(root: string, name: string, id: string): Promise<void> {
  validateName(name);
  await fs.promises.mkdir(namesDir(root), { recursive: true, mode: 0o700 });
  const file = path.join(namesDir(root), name);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.promises.writeFile(file, id, { flag: "wx", mode: 0o600 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const owner = await fs.promises.readFile(file, "utf8").catch(() => "");
    if (owner && exists(path.join(stateRoot(root), owner))) {
      throw new MoatError(
        "EEXIST",
        `the name "${name}" is already used by container ${shortId(owner)}: choose another --name, or remove that container with "moat rm ${name}"`,
      );
    }
    // Stale: its container is gone. Remove it and try once more (a racing claim may still win).
    await fs.promises.rm(file, { force: true });
  }
  throw new MoatError(
    "EEXIST",
    `the name "${name}" was taken by another container just now: choose another --name`,
  );
}

/** Give a name back, only if it is still this container's. */
export async function releaseName(root: string, name: string | undefined, id: string): Promise<void> {
  if (!name || !NAME_RE.test(name)) return;
  const file = path.join(namesDir(root), name);
  const owner = await fs.promises.readFile(file, "utf8").catch(() => undefined);
  if (owner === id) await fs.promises.rm(file, { force: true });
}

/** The id of the container a person means: a name, a full id, or a unique prefix of an id. */
export async function resolveContainer(root: string, text: string): Promise<string> {
  const byName = NAME_RE.test(text)
    ? await fs.promises.readFile(path.join(namesDir(root), text), "utf8").catch(() => undefined)
    : undefined;
  if (byName && exists(path.join(stateRoot(root), byName))) return byName;
  if (ID_RE.test(text) && exists(path.join(stateRoot(root), text))) return text;
  if (/^[0-9a-f]+$/.test(text)) {
    const matches = (await listContainers(stateRoot(root)))
      .map((c) => c.id)
      .filter((id) => id.startsWith(text));
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new MoatError(
        "EINVAL",
        `"${text}" is the start of ${matches.length} container ids: give more digits, or the name`,
      );
    }
  }
  throw new MoatError("ENOENT", `no container named or with id "${text}": "moat ps -a" lists them`);
}

/** Does this text name one of moat's own containers? (Used to tell moat's kill/exec from runc's.) */
export function isOwnContainer(root: string, text: string | undefined): boolean {
  if (!text) return false;
  if (NAME_RE.test(text) && exists(path.join(namesDir(root), text))) return true;
  if (!/^[0-9a-f]+$/.test(text)) return false;
  // A foreground `moat run` has a record under ROOT/runs (foreground.ts) instead of OCI state.
  const named = (dir: string, ext: string) => {
    try {
      return fs
        .readdirSync(dir)
        .some((d) => ID_RE.test(d.slice(0, d.length - ext.length)) && d.endsWith(ext) && d.startsWith(text));
    } catch {
      return false;
    }
  };
  return named(stateRoot(root), "") || named(path.join(root, "runs"), ".json");
}
