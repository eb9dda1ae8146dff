// The compatibility programs of test/userkernel/c (issue 11): each compiled twice from one
// source, `gcc -static -pthread` and dynamically linked, into a rootfs of their own that holds
// the dynamic loader, the libraries `ldd` names and libgcc_s (which glibc dlopens), so both
// run under the userkernel as they run natively. compat.test.ts compares the runs.

import { execFile, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { outcomeOf } from "../helpers/streams.js";
import { C_DIR, type Outcome } from "./helpers.js";

const exec = promisify(execFile);

export type Linking = "static" | "dynamic";

export interface CompatProgram {
  /** test/userkernel/c/<name>.c */
  name: string;
  /**
   * Natively in a PID namespace of its own (`unshare -pf`), as PID 1: for kill(-1, sig),
   * which from the host's root would signal every process of the machine.
   */
  pidNamespace?: boolean;
}

/** Every compatibility program, one concern each (see the comment at the top of each file). */
export const PROGRAMS: CompatProgram[] = [
  { name: "wait_status" },
  { name: "wait_stop" },
  { name: "waitid" },
  { name: "fork200" },
  { name: "pipes" },
  { name: "reparent" },
  { name: "clone_raw" },
  { name: "exec_threads" },
  { name: "forkwait" },
  { name: "clonethread" },
  { name: "proc_tasks" },
  { name: "posix_spawn" },
  { name: "sig_info" },
  { name: "sig_flags" },
  { name: "sig_restart" },
  { name: "sigsuspend" },
  { name: "killpg" },
  { name: "killall", pidNamespace: true },
  { name: "altstack" },
  { name: "segv" },
  { name: "fpe" },
  { name: "futex" },
  { name: "pthreads" },
  { name: "robust" },
  { name: "threads_signals" },
  { name: "timers" },
  { name: "itimer" },
  { name: "nanosleep" },
  { name: "locks" },
  { name: "memfd" },
  { name: "exec_bytes" },
  { name: "init_signals", pidNamespace: true },
  { name: "eventfd" },
  { name: "exec_unshare" },
  { name: "xattr" },
  { name: "zombie" },
];

export interface CompatRootfs {
  rootfs: string;
  /** The program's path on the host (for the native run). */
  hostPath(name: string, linking: Linking): string;
  /** Its path in the rootfs. */
  containerPath(name: string, linking: Linking): string;
  remove(): Promise<void>;
}

const fileName = (name: string, linking: Linking) => (linking === "static" ? name : `${name}-dyn`);

/** The shared objects a dynamic executable needs, from `ldd` (the loader included). */
export async function lddLibraries(binary: string): Promise<string[]> {
  const { stdout } = await exec("ldd", [binary]);
  const libs = new Set<string>();
  for (const m of stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) libs.add(m[1]!);
  return [...libs];
}

/**
 * Compile `programs` both ways into /t of a new rootfs (with /tmp, /proc and /dev for the
 * kernel's mounts) and copy in the libraries the dynamic ones need, at their host paths.
 */
export async function compatRootfs(programs: CompatProgram[]): Promise<CompatRootfs> {
  const base = await mkdtemp(path.join(tmpdir(), "userkernel-compat-"));
  const rootfs = path.join(base, "rootfs");
  try {
    for (const d of ["t", "tmp", "proc", "dev"]) await mkdir(path.join(rootfs, d), { recursive: true });
    const libs = new Set<string>();
    const compile = async (p: CompatProgram): Promise<void> => {
      const src = path.join(C_DIR, `${p.name}.c`);
      const dyn = path.join(rootfs, "t", fileName(p.name, "dynamic"));
      await exec("gcc", [
        "-static",
        "-pthread",
        "-O1",
        "-o",
        path.join(rootfs, "t", fileName(p.name, "static")),
        src,
      ]);
      await exec("gcc", ["-pthread", "-O1", "-o", dyn, src]);
      for (const l of await lddLibraries(dyn)) libs.add(l);
    };
    // Two compilers at a time: the machine's cores, without starving the rest.
    const queue = [...programs];
    const worker = async (): Promise<void> => {
      for (let p = queue.shift(); p; p = queue.shift()) await compile(p);
    };
    await Promise.all([worker(), worker()]);
    // glibc dlopens libgcc_s for pthread_exit and pthread_cancel (the unwinder): ldd cannot see it.
    const libc = [...libs].find((l) => path.basename(l) === "libc.so.6");
    if (libc) libs.add(path.join(path.dirname(libc), "libgcc_s.so.1"));
    for (const lib of libs) {
      const dest = path.join(rootfs, lib);
      await mkdir(path.dirname(dest), { recursive: true });
      await copyFile(lib, dest); // follows the host's symlink: the file itself, at the linked name
    }
  } catch (e) {
    await rm(base, { recursive: true, force: true });
    throw e;
  }
  return {
    rootfs,
    hostPath: (name, linking) => path.join(rootfs, "t", fileName(name, linking)),
    containerPath: (name, linking) => `/t/${fileName(name, linking)}`,
    remove: () => rm(base, { recursive: true, force: true }),
  };
}

/**
 * Run natively as helpers.ts's runNative does (environment GREETING=hi, descriptors 0-2), but
 * killed after `timeoutMs`: a program that hangs natively is a broken test, said so.
 */
export function runNativeTimed(file: string, args: string[], timeoutMs: number): Promise<Outcome> {
  const p = spawn(file, args, {
    env: { GREETING: "hi" },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: timeoutMs,
    killSignal: "SIGKILL",
  });
  return outcomeOf(p).then((o) => {
    if (o.signal === "SIGKILL") o.stderr += `\n(killed after ${timeoutMs} ms natively)`;
    return o;
  });
}

/** Every live host process below `pid` (children, theirs, ...), zombies included: stubs left over. */
export function descendantsOf(pid: number): Map<number, string> {
  const parent = new Map<number, { ppid: number; comm: string }>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "latin1");
      const close = stat.lastIndexOf(")");
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      parent.set(Number(name), { ppid, comm: stat.slice(stat.indexOf("(") + 1, close) });
    } catch {
      // Gone while we looked.
    }
  }
  const out = new Map<number, string>();
  for (const [p, info] of parent) {
    for (let up = info.ppid, hops = 0; up > 1 && hops < 64; up = parent.get(up)?.ppid ?? 0, hops++)
      if (up === pid) {
        out.set(p, info.comm);
        break;
      }
  }
  return out;
}
