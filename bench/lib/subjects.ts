// The things a scenario runs: native commands, runc/crun on an OCI bundle made by moat, and
// moat itself through its CLI, each only where this host can run it.
import { execFile } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createBundle } from "../../src/image/bundle.js";
import { ensureDefaultImage } from "../../src/image/default-image.js";
import { ImageStore } from "../../src/image/store.js";
import { availability } from "../../src/isolation/index.js";
import type { IsolationName } from "../../src/sandbox/types.js";
import type { BenchContext } from "./types.js";

const exec = promisify(execFile);

export const MOAT_CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
export const FLOORS_DIR = fileURLToPath(new URL("../../../bench/floors/", import.meta.url));

export async function store(ctx: BenchContext): Promise<ImageStore> {
  return ImageStore.open(ctx.root);
}

let bundleCount = 0;
/** An OCI bundle of the built-in busybox image (or `image`) running `args`. */
export async function bundle(ctx: BenchContext, args: string[], image?: string): Promise<string> {
  const s = await store(ctx);
  const name = image ?? (await ensureDefaultImage(s));
  const dir = path.join(ctx.work, `bundle-${++bundleCount}`);
  await createBundle(s, name, dir, { args, rootfsMode: "copy" });
  return dir;
}

/** Why an OCI runtime (runc, crun) cannot run a bundle here, or undefined when it can. */
export async function ociRuntimeProblem(
  ctx: BenchContext,
  runtime: "runc" | "crun",
): Promise<string | undefined> {
  try {
    const b = await bundle(ctx, ["true"]);
    await exec(
      runtime,
      ["--root", path.join(ctx.work, `${runtime}-state`), "run", "-b", b, `probe-${runtime}`],
      {
        timeout: 30_000,
      },
    );
    return undefined;
  } catch (e) {
    const err = e as { code?: string; stderr?: string; message: string };
    if (err.code === "ENOENT") return `${runtime} is not installed (apt-get install ${runtime})`;
    return `${runtime} fails on this host: ${(err.stderr || err.message).trim().split("\n").pop()}`;
  }
}

export function ociRunArgv(
  ctx: BenchContext,
  runtime: "runc" | "crun",
  bundleDir: string,
  id: string,
): string[] {
  return [runtime, "--root", path.join(ctx.work, `${runtime}-state`), "run", "-b", bundleDir, id];
}

/** Why moat cannot run this isolation here, or undefined when it can. */
export async function moatProblem(isolation: IsolationName): Promise<string | undefined> {
  const a = await availability(isolation);
  return a.available ? undefined : a.reason;
}

export function moatRunArgv(
  ctx: BenchContext,
  isolation: IsolationName,
  args: string[],
  image = "default",
): string[] {
  return [process.execPath, MOAT_CLI, "--root", ctx.root, "run", "--isolation", isolation, image, ...args];
}

/** Compile a C source from bench/floors with gcc; returns the binary's path. */
export async function compileFloor(
  ctx: BenchContext,
  source: string,
  flags: string[] = ["-O2"],
): Promise<string> {
  const out = path.join(ctx.work, path.basename(source, ".c"));
  await exec("gcc", [...flags, "-o", out, path.join(FLOORS_DIR, source)]);
  return out;
}
