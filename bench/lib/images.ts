// Images the scenarios need beyond the default busybox one, built into the bench's store:
// busybox plus bench programs and a big file of random bytes, and busybox plus the host's
// Debian python3.
import { execFile } from "node:child_process";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { buildImage, type LayerEntry, packLayer } from "../../src/image/build.js";
import { busyboxLayer } from "../../src/image/default-image.js";
import { store } from "./subjects.js";
import type { BenchContext } from "./types.js";

/** An uncompressed layer tar; parent directories are added for every entry. */
export async function layer(entries: LayerEntry[]): Promise<Buffer> {
  const all = new Map<string, LayerEntry>();
  for (const e of entries) {
    const parts = e.name.split("/");
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (!all.has(d)) all.set(d, { name: d, type: "directory", mode: 0o755 });
    }
    all.set(e.name, e);
  }
  return packLayer([...all.values()]);
}

const exec = promisify(execFile);

const CONFIG = {
  Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
  WorkingDir: "/",
};

/** A file to add to an image, at `name` (relative to /). */
export interface ImageFile {
  name: string;
  content: Buffer;
  mode: number;
}

/** busybox + `files`. Returns the image name. */
export async function busyboxPlus(ctx: BenchContext, name: string, files: ImageFile[]): Promise<string> {
  await buildImage(await store(ctx), {
    layers: [await busyboxLayer(), await layer(files.map((f) => ({ ...f, type: "file" as const })))],
    config: { ...CONFIG, Cmd: ["sh"] },
    name,
  });
  return name;
}

/** busybox + /big holding `data`, and `extra` files (the programs that read it). Returns the image name. */
export async function bigFileImage(
  ctx: BenchContext,
  data: Buffer,
  extra: ImageFile[] = [],
): Promise<string> {
  return busyboxPlus(ctx, `moat.local/bench-fileread:${data.length}`, [
    { name: "big", mode: 0o644, content: data },
    ...extra,
  ]);
}

/** Prints the source and cached bytecode of every module this interpreter loads to start. */
const LOADED = `
import sys, os, importlib.util
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None)
    if not f: continue
    print(f)
    if f.endswith(".py"):
        c = importlib.util.cache_from_source(f)
        if os.path.exists(c): print(c)
`;

/** Standard-library folders taken whole: codecs are looked up by name at run time, and Python looks for lib-dynload at start. */
const PY_WHOLE = ["encodings", "lib-dynload"];

/**
 * busybox + the host's Debian python3: the interpreter, the libraries `ldd` names (at the
 * same paths), and the part of its standard library `python3 -c pass` loads (asked of the
 * interpreter itself, in an empty environment as in the container) plus encodings and
 * lib-dynload. The whole standard library would take half a minute to gzip. Throws with
 * the reason when the host has no such Python.
 */
export async function pythonImage(ctx: BenchContext): Promise<string> {
  const python = "/usr/bin/python3";
  const real = await realpath(python).catch(() => undefined);
  if (!real) throw new Error(`${python} is missing (apt-get install python3)`);
  const { stdout: ver } = await exec(real, ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]);
  const stdlib = `/usr/lib/python${ver.trim()}`;
  const { stdout: lddOut } = await exec("ldd", [real]);
  const libs = [...lddOut.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!);
  const entries = new Map<string, LayerEntry>();
  const add = async (file: string, mode?: number) => {
    const s = await stat(file).catch(() => undefined); // follows symlinks; a dangling one is skipped
    if (s?.isFile())
      entries.set(file, {
        name: file.slice(1),
        type: "file",
        mode: mode ?? s.mode & 0o755,
        content: await readFile(file),
      });
  };
  await add(real);
  entries.set("python3", { ...entries.get(real)!, name: "usr/bin/python3" });
  entries.delete(real);
  for (const lib of libs) await add(lib, 0o755);
  const { stdout: loaded } = await exec(real, ["-c", LOADED], { env: {} });
  for (const f of loaded.split("\n")) if (f.startsWith(`${stdlib}/`)) await add(f);
  const walk = async (dir: string): Promise<void> => {
    for (const d of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, d.name);
      if (d.isDirectory()) await walk(p);
      else await add(p);
    }
  };
  for (const w of PY_WHOLE) await walk(path.join(stdlib, w));
  const name = "moat.local/bench-python:latest";
  await buildImage(await store(ctx), {
    layers: [await busyboxLayer(), await layer([...entries.values()])],
    config: { ...CONFIG, Cmd: ["python3"] },
    name,
  });
  return name;
}
