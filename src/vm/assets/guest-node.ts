// What the guest needs to run the agent: the host's own Node binary with the shared
// libraries and dynamic loader it links against (read from ldd), and the agent bundled
// by esbuild into one file. Using the host's Node means no second download and the
// same Node version on both sides of the agent protocol.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, realpath } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { MoatError } from "../../spec/errors.js";

const execFileP = promisify(execFile);

export interface GuestFile {
  /** Path inside the guest, without the leading "/". */
  readonly path: string;
  readonly data: Buffer;
  readonly perm: number;
}

/** The Node binary and every library ldd names, at the paths the loader will look for. */
export async function nodeFiles(node = process.execPath): Promise<GuestFile[]> {
  const { stdout } = await execFileP("ldd", [node], { encoding: "utf8" }).catch((e: unknown) => {
    throw new MoatError("EIO", `cannot list the libraries of ${node} with ldd: install libc-bin`, {
      cause: e,
    });
  });
  const files: GuestFile[] = [{ path: "bin/node", data: await readFile(node), perm: 0o755 }];
  for (const line of stdout.split("\n")) {
    // "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (!m) {
      if (/not found/.test(line))
        throw new MoatError("ENOENT", `${node} needs a library that is missing: ${line.trim()}`);
      continue;
    }
    const lib = m[1]!;
    files.push({ path: lib.slice(1), data: await readFile(await realpath(lib)), perm: 0o755 });
  }
  return files;
}

/** Where esbuild works from, and what the agent's input paths are relative to: dist/. */
const BUNDLE_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** The agent (dist/src/agent/main.js and what it imports) as one CommonJS file. */
export async function bundleAgent(): Promise<{ data: Buffer; inputs: string[] }> {
  const entry = fileURLToPath(new URL("../../agent/main.js", import.meta.url));
  let esbuild: typeof import("esbuild");
  try {
    esbuild = await import("esbuild");
  } catch (e) {
    throw new MoatError(
      "ENOENT",
      "bundling the guest agent needs esbuild: run npm install in moat's directory",
      {
        cause: e,
      },
    );
  }
  const out = await esbuild.build({
    entryPoints: [entry],
    // esbuild names each module in a comment by its path from here; from dist/ they read the
    // same whatever the caller's working directory or the checkout's place, so the bundle's
    // hash (which decides whether the cached guest assets are current) does too.
    absWorkingDir: BUNDLE_ROOT,
    metafile: true,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    write: false,
    logLevel: "silent",
    legalComments: "none",
  });
  // esbuild keeps a service process alive for the next build; moat builds once.
  await Promise.resolve(esbuild.stop()).catch(() => {});
  return {
    data: Buffer.from(out.outputFiles[0]!.contents),
    inputs: Object.keys(out.metafile!.inputs).sort(),
  };
}

export interface AgentBundle {
  readonly data: Buffer;
  readonly sha256: string;
  /** The files the bundle was made from (relative to dist/) and one hash of their contents. */
  readonly sources: AgentSources;
}

export interface AgentSources {
  readonly files: readonly string[];
  readonly sha256: string;
}

/** One hash over the named files' paths and contents; undefined if one cannot be read. */
export async function hashAgentSources(files: readonly string[]): Promise<string | undefined> {
  const h = createHash("sha256");
  try {
    for (const f of files) {
      h.update(`${f}\0`);
      h.update(await readFile(resolve(BUNDLE_ROOT, f)));
      h.update("\0");
    }
  } catch {
    return undefined;
  }
  return h.digest("hex");
}

let agentCache: Promise<AgentBundle> | undefined;

/** The bundle and its hash, built once per process. */
export function agentBundle(): Promise<AgentBundle> {
  agentCache ??= bundleAgent().then(async ({ data, inputs }) => ({
    data,
    sha256: createHash("sha256").update(data).digest("hex"),
    sources: { files: inputs, sha256: (await hashAgentSources(inputs)) ?? "" },
  }));
  agentCache.catch(() => {
    agentCache = undefined;
  });
  return agentCache;
}
