// Fetching Debian packages without installing them: apt-get download into a scratch
// directory, dpkg-deb -x to unpack. The host's package state is never touched.
import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { MoatError } from "../../spec/errors.js";

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Run a build tool; a missing tool or a failure becomes a MoatError that says what to do. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; hint: string },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: string | number };
        if (e.code === "ENOENT") {
          return reject(new MoatError("ENOENT", `${cmd} is not installed: ${opts.hint}`, { cause: err }));
        }
        const detail = (stderr || stdout || String(err)).trim().split("\n").slice(-5).join("\n  ");
        reject(
          new MoatError("EIO", `${cmd} ${args.join(" ")} failed: ${opts.hint}\n  ${detail}`, { cause: err }),
        );
      },
    );
  });
}

/**
 * The concrete package a Debian meta package (like linux-image-amd64) depends on whose
 * name matches `pattern`: the meta package has no files of its own.
 */
export async function resolveDependency(meta: string, pattern: RegExp): Promise<string> {
  const { stdout } = await run("apt-cache", ["depends", meta], {
    hint: `check that package ${meta} exists in your apt sources (run apt-get update)`,
  });
  for (const line of stdout.split("\n")) {
    const m = /^\s*(?:\|)?Depends:\s*(\S+)/.exec(line);
    if (m && pattern.test(m[1]!)) return m[1]!;
  }
  throw new MoatError(
    "ENOENT",
    `apt-cache depends ${meta} names no package matching ${pattern}; check your apt sources (run apt-get update)`,
  );
}

/** Download one package's .deb into `dir` and return its path. */
export async function download(pkg: string, dir: string): Promise<string> {
  // The scratch dir is private to root, so apt's unprivileged sandbox user could not
  // write there; downloading as root is fine because nothing is installed.
  await run("apt-get", ["-q", "-o", "APT::Sandbox::User=root", "download", pkg], {
    cwd: dir,
    hint: `could not download package ${pkg}; check your apt sources and network (try: apt-get update && apt-get download ${pkg})`,
  });
  const debs = (await readdir(dir)).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb"));
  if (debs.length !== 1) {
    throw new MoatError(
      "EIO",
      `apt-get download ${pkg} left ${debs.length} .deb files in ${dir}; expected one`,
    );
  }
  return join(dir, debs[0]!);
}

/** Read control fields (Package, Version, ...) of a .deb. */
export async function debFields(deb: string, fields: readonly string[]): Promise<Record<string, string>> {
  const { stdout } = await run("dpkg-deb", ["-f", deb, ...fields], { hint: "install the dpkg package" });
  const out: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  if (fields.length === 1 && !(fields[0]! in out)) out[fields[0]!] = stdout.trim();
  return out;
}

export async function extract(deb: string, dir: string): Promise<void> {
  await run("dpkg-deb", ["-x", deb, dir], { hint: `${deb} could not be unpacked; delete it and retry` });
}
