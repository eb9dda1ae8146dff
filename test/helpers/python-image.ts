// A rootfs holding the host's own Debian python3 (/usr/bin/python3, not a pyenv one on the
// PATH) and what it needs to run unmodified: the shared libraries `ldd` names for the
// interpreter and for every extension module in lib-dynload, what glibc dlopens by name
// (libgcc_s.so.1 for pthread_cancel and thread exit, libnss_files for getpwnam), the whole
// standard library (its test package only when asked: the regression tests), /etc/passwd,
// /etc/group and an nsswitch.conf, and busybox with a link per applet for subprocess. Host
// symlinks on the way to each file (Debian's merged /usr: /lib -> usr/lib, /lib64) are made
// again inside, so every path ld.so and python look up resolves as on the host.
// Used by the userkernel python tests (test/userkernel/python.test.ts) and
// scripts/python-tests.sh; runNativeChroot runs the same rootfs natively, for comparison.

import { execFile, spawn } from "node:child_process";
import { copyFile, lstat, mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { outcomeOf } from "./streams.js";

const exec = promisify(execFile);

export const PYTHON = "/usr/bin/python3";
/** The environment python runs with in the rootfs (natively and under the userkernel). */
export const PYTHON_ENV = ["PATH=/usr/bin:/bin", "HOME=/root", "LANG=C.UTF-8"];

export interface PythonRootfs {
  /** The temp dir holding the rootfs; remove() deletes it. */
  base: string;
  rootfs: string;
  /** "3.11" */
  version: string;
  remove(): Promise<void>;
}

const PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP = "root:x:0:\nnogroup:x:65534:\n";
const NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files\n";

/** Libraries glibc loads with dlopen, which ldd does not list. */
const DLOPENED = ["libgcc_s.so.1", "libnss_files.so.2"];

/**
 * Copy host path `p` into `rootfs` at the same path: each symlink met on the way (a directory
 * or the file itself) is made again inside with the same target, then followed.
 */
async function place(rootfs: string, p: string, seen = new Set<string>()): Promise<void> {
  if (seen.has(p)) return;
  seen.add(p);
  const parts = p.split("/").filter(Boolean);
  let cur = "/";
  for (let i = 0; i < parts.length; i++) {
    const next = path.join(cur, parts[i]!);
    const st = await lstat(next);
    const inside = path.join(rootfs, next);
    if (st.isSymbolicLink()) {
      const target = await readlink(next);
      await mkdir(path.dirname(inside), { recursive: true });
      if (!(await lstat(inside).catch(() => undefined))) await symlink(target, inside);
      const resolved = path.resolve(path.dirname(next), target);
      await place(rootfs, path.join(resolved, ...parts.slice(i + 1)), seen);
      return;
    }
    if (i === parts.length - 1) {
      if (st.isDirectory()) await mkdir(inside, { recursive: true });
      else {
        await mkdir(path.dirname(inside), { recursive: true });
        await copyFile(next, inside);
      }
      return;
    }
    cur = next;
  }
}

/** The shared objects `ldd` names for `file` (those it finds; a missing one is skipped). */
async function ldd(file: string): Promise<string[]> {
  const r = await exec("ldd", [file]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? "" }));
  return [...r.stdout.matchAll(/(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
}

/** The directory of the host's libc, from ldd of the interpreter. */
function libDir(libs: string[]): string {
  const libc = libs.find((l) => path.basename(l) === "libc.so.6");
  if (!libc) throw new Error(`ldd ${PYTHON} names no libc.so.6`);
  return path.dirname(libc);
}

/** Build the rootfs in a new temp dir. Throws with what to install when the host lacks python3. */
export async function buildPythonRootfs(opts: { withTests?: boolean } = {}): Promise<PythonRootfs> {
  const found = await lstat(PYTHON).catch(() => undefined);
  if (!found) throw new Error(`${PYTHON} is missing: apt-get install python3`);
  const { stdout: ver } = await exec(PYTHON, ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]);
  const version = ver.trim();
  const stdlib = `/usr/lib/python${version}`;
  if (opts.withTests && !(await lstat(path.join(stdlib, "test", "test_os.py")).catch(() => undefined)))
    throw new Error(`${stdlib}/test has no regression tests: apt-get install libpython${version}-testsuite`);
  const base = await mkdtemp(path.join(tmpdir(), "moat-python-rootfs-"));
  const rootfs = path.join(base, "rootfs");
  try {
    await mkdir(rootfs);
    await place(rootfs, PYTHON);
    const libs = new Set(await ldd(PYTHON));
    const dynload = path.join(stdlib, "lib-dynload");
    for (const so of await readdir(dynload))
      if (so.endsWith(".so")) for (const l of await ldd(path.join(dynload, so))) libs.add(l);
    const dir = libDir([...libs]);
    for (const name of DLOPENED) libs.add(path.join(dir, name));
    for (const l of libs) await place(rootfs, l);

    // The standard library whole (cp -a keeps its own symlinks, such as sitecustomize.py),
    // the test package only for the regression tests.
    await place(rootfs, path.dirname(stdlib));
    await mkdir(path.join(rootfs, stdlib), { recursive: true });
    for (const entry of await readdir(stdlib)) {
      if (entry === "test" && !opts.withTests) continue;
      await exec("cp", ["-a", path.join(stdlib, entry), path.join(rootfs, stdlib)]);
    }
    const etcPython = `/etc/python${version}`;
    if (await lstat(etcPython).catch(() => undefined))
      await exec("cp", ["-a", etcPython, path.join(rootfs, "etc")]);

    // busybox and a link per applet, beside python3 (never over a file that is there).
    await place(rootfs, "/bin/busybox");
    const { stdout: applets } = await exec("/bin/busybox", ["--list"]);
    const bin = path.join(rootfs, "bin");
    for (const a of applets.split("\n").filter(Boolean)) {
      const at = path.join(bin, a);
      if (!(await lstat(at).catch(() => undefined))) await symlink("busybox", at);
    }

    for (const d of ["etc", "tmp", "proc", "dev", "root", "sys"])
      await mkdir(path.join(rootfs, d), { recursive: true });
    await writeFile(path.join(rootfs, "etc", "passwd"), PASSWD);
    await writeFile(path.join(rootfs, "etc", "group"), GROUP);
    await writeFile(path.join(rootfs, "etc", "nsswitch.conf"), NSSWITCH);
  } catch (e) {
    await rm(base, { recursive: true, force: true });
    throw e;
  }
  return { base, rootfs, version, remove: () => rm(base, { recursive: true, force: true }) };
}

export interface ChrootOutcome {
  stdout: string;
  stderr: string;
  code?: number;
  signal?: string;
}

/**
 * Run `argv` natively in `rootfs` with chroot, in a mount namespace of its own (so nothing
 * it mounts outlives it): /proc, the host's /dev, a fresh /dev/shm and /tmp, as a container
 * has them. Needs root (the tests run as root). `env` replaces the environment.
 */
export function runNativeChroot(
  rootfs: string,
  argv: string[],
  opts: { env?: string[]; cwd?: string; timeoutMs?: number } = {},
): Promise<ChrootOutcome> {
  const setup = [
    'set -e; R="$1"; shift',
    'mount --rbind /dev "$R/dev"',
    'mount -t tmpfs -o mode=1777 shm "$R/dev/shm"',
    'mount -t proc proc "$R/proc"',
    'mount -t tmpfs -o mode=1777 tmp "$R/tmp"',
    `exec chroot "$R" /usr/bin/env -i ${(opts.env ?? PYTHON_ENV).map(shellQuote).join(" ")} sh -c 'cd "$0" && exec "$@"' ${shellQuote(opts.cwd ?? "/")} "$@"`,
  ].join("\n");
  const p = spawn("unshare", ["-m", "--propagation", "private", "sh", "-c", setup, "sh", rootfs, ...argv], {
    stdio: ["ignore", "pipe", "pipe"],
    timeout: opts.timeoutMs,
  });
  return outcomeOf(p);
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
