// The sandbox's /proc, for real programs. Present: /proc/self, /proc/thread-self,
// /proc/<pid>/{auxv,cmdline,comm (writable),environ,exe,cwd,root,fd/,fdinfo/,maps,mem,limits,
// mounts,mountinfo,oom_score_adj (writable),stat,statm,status,task/<tid>/ (the same files,
// stat, status and comm of the thread)}, /proc/cpuinfo (the host's), meminfo, stat, version,
// mounts (-> self/mounts), cmdline, devices, uptime, loadavg, filesystems, and in /proc/sys
// kernel/{pid_max,ngroups_max,hostname,domainname,osrelease,ostype,cap_last_cap,overflowuid,
// overflowgid,randomize_va_space,random/{uuid,boot_id},keys/{maxkeys,maxbytes}} and
// fs/pipe-max-size, vm/{max_map_count,mmap_min_addr,overcommit_memory} (the formats of proc(5); stat, statm and
// status in proc-pid.ts, maps, limits and fdinfo in proc-text.ts, the sandbox-wide files in
// proc-system.ts).
// Missing (ENOENT): /proc/<pid>/{smaps,io,ns,...}, the rest of /proc/sys, /proc/net.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import { fail } from "../errno.js";
import type { FileDescription } from "../kernel/fdtable.js";
import type { MemoryFigures } from "../mm/usage.js";
import {
  type Ctx,
  DirInode,
  type Fs,
  GeneratedInode,
  type Inode,
  OpenableInode,
  SymlinkInode,
} from "./inode.js";
import { PIPE_MAX_SIZE } from "./pipe.js";
import { ProcMemFile } from "./proc-mem.js";
import { statLine, statmText, statusText } from "./proc-pid.js";
import { loadavgText, meminfoText, statText, uptimeText } from "./proc-system.js";
import { fdinfoText, limitsText, mapsText } from "./proc-text.js";
import type { ProcessSource, ProcessView, ThreadView } from "./proc-types.js";
import { dtype, type Stat } from "./stat.js";

export type { ProcessSource, ProcessView } from "./proc-types.js";

/**
 * A symlink of /proc/<pid>/fd: readlink shows a name, but following it reaches the open
 * file itself (a "magic link"), whatever its name is now.
 */
export class MagicLink extends SymlinkInode {
  constructor(
    fs: Fs,
    target: (ctx: Ctx) => string,
    readonly description: () => FileDescription | undefined,
  ) {
    super(fs, target, 0, 0);
    this.mode = (this.mode & ~0o777) | 0o700;
  }
  /** The link's mode says how the descriptor is open: r-x, -wx or rwx for the owner. */
  override stat(): Stat {
    const s = super.stat();
    const d = this.description();
    if (!d) return s;
    const acc = d.flags & 3;
    const bits = acc === 0 ? 0o500 : acc === 1 ? 0o300 : 0o700;
    return { ...s, mode: (s.mode & ~0o777) | bits };
  }
}

/** A directory whose entries are computed: names() says what exists, build() makes one. */
class SynthDir extends DirInode {
  private readonly made = new Map<string, Inode>();
  constructor(
    fs: Fs,
    parent: DirInode | null,
    name: string,
    private readonly names: () => string[],
    private readonly build: (name: string, dir: SynthDir) => Inode,
    mode = 0o555,
  ) {
    super(fs, mode, 0, 0, parent, name);
  }

  override cached(name: string): Inode | null {
    if (!this.names().includes(name)) {
      this.made.delete(name);
      return null;
    }
    let n = this.made.get(name);
    if (!n) {
      n = this.build(name, this);
      if (n instanceof DirInode) {
        n.parent = this;
        n.name = name;
      }
      this.made.set(name, n);
    }
    return n;
  }

  override async lookup(name: string): Promise<Inode | null> {
    return this.cached(name);
  }

  /** Its names are what exists: a new one cannot be made (ENOENT, as Linux's proc lookup answers). */
  override attach(): void {
    fail("ENOENT");
  }

  /** Nor removed (EPERM: proc directories have no unlink, rmdir or rename). */
  override detach(): void {
    fail("EPERM");
  }

  override async list(): Promise<Array<{ name: string; ino: number; type: number }>> {
    return this.names().map((name) => {
      const n = this.cached(name)!;
      return { name, ino: n.ino, type: dtype(n.mode) };
    });
  }
}

const text = (s: string): Buffer => Buffer.from(s, "latin1");

export interface ProcOptions {
  processes: () => ProcessSource;
  /** /proc/mounts and /proc/<pid>/mounts. */
  mounts: () => string;
  /** /proc/<pid>/mountinfo. */
  mountinfo: () => string;
  /** The sandbox's memory, for /proc/meminfo. */
  memory: () => MemoryFigures;
  /** The real-time clock at boot, in seconds since the epoch (/proc/stat's btime). */
  bootRealtimeS: number;
  /** /proc/version's line, e.g. "Linux version 6.1.0-moat ...". */
  version: string;
  bootNs: bigint;
  /** The mountinfo id of the mount a device number belongs to (fdinfo's mnt_id). */
  mountId: (dev: number) => number;
}

/** Linux's PID_MAX_DEFAULT: the pid namespace hands out pids below it. */
const PID_MAX = 32768;
/** NGROUPS_MAX: the most supplementary groups (setgroups' limit). */
const NGROUPS_MAX = 65536;
const TASK_COMM_LEN = 16;

/**
 * /proc/cpuinfo: the host's, as it is. The application runs on the host's CPUs and cpuid
 * tells it the same vendor, model and flags; readers that look for "flags" (JITs choosing
 * SIMD code) or count "processor" lines get what is true. A host without the file gets the
 * few fields Node knows.
 */
function cpuinfo(): string {
  try {
    return readFileSync("/proc/cpuinfo", "latin1");
  } catch {
    return os
      .cpus()
      .map(
        (c, i) =>
          `processor\t: ${i}\nmodel name\t: ${c.model}\ncpu MHz\t\t: ${c.speed.toFixed(3)}\n` +
          `physical id\t: 0\ncore id\t\t: ${i}\ncpu cores\t: ${os.cpus().length}\n\n`,
      )
      .join("");
  }
}

/** A writable file's store: the text written, as an integer in [lo, hi] (kstrtoint's rules). */
function intArg(data: Buffer, lo: number, hi: number): number {
  const t = data.toString("latin1").trim();
  if (!/^[-+]?\d+$/.test(t)) fail("EINVAL");
  const v = Number(t);
  if (v < lo || v > hi) fail("EINVAL");
  return v;
}

function commFile(fs: Fs, pid: number, comm: () => string, set: (name: string) => void): GeneratedInode {
  return new GeneratedInode(
    fs,
    () => text(`${comm()}\n`),
    0o644,
    (ctx, data) => {
      // comm_write: at most 15 bytes, the newline kept, and only from the process itself.
      if (ctx.pid !== pid) fail("EINVAL");
      const b = data.subarray(0, TASK_COMM_LEN - 1);
      const z = b.indexOf(0);
      set((z < 0 ? b : b.subarray(0, z)).toString("latin1"));
      return data.length;
    },
  );
}

/** /proc/<pid>/task/<tid>: the thread's own stat, status and comm. */
function taskDir(fs: Fs, pid: number, tid: number, o: ProcOptions): SynthDir {
  const view = (): ProcessView | undefined => o.processes().get(pid);
  const thread = (): ThreadView | undefined =>
    view()
      ?.threads()
      .find((t) => t.tid === tid);
  const files: Files = {
    ...pidFiles(fs, pid, o),
    stat: () =>
      new GeneratedInode(fs, (ctx) => {
        const v = view();
        const t = thread();
        return text(v && t ? statLine(v, o.bootNs, ctx.pid === pid, t) : "");
      }),
    status: () =>
      new GeneratedInode(fs, (ctx) => {
        const v = view();
        const t = thread();
        return text(v && t ? statusText(v, ctx.pid === pid, t) : "");
      }),
    comm: () =>
      commFile(
        fs,
        pid,
        () => thread()?.comm ?? "",
        (name) => view()?.setComm(name),
      ),
  };
  return ownedDir(fs, String(tid), files, view());
}

function cmdlineOf(v: ProcessView | undefined): string {
  return v?.cmdline.map((a) => `${a}\0`).join("") ?? "";
}

/** A directory of fixed names, owned (with its files) by the process, as Linux shows them. */
function ownedDir(
  fs: Fs,
  name: string,
  files: Record<string, (dir: SynthDir) => Inode>,
  v: ProcessView | undefined,
): SynthDir {
  const own = (n: Inode): Inode => {
    if (v) {
      n.uid = v.uid;
      n.gid = v.gid;
    }
    return n;
  };
  const dir = new SynthDir(
    fs,
    null,
    name,
    () => Object.keys(files),
    (n, d) => own(files[n]!(d)),
  );
  own(dir);
  return dir;
}

type Files = Record<string, (dir: SynthDir) => Inode>;

/** The files of /proc/<pid>/ but task/ (a task directory holds them too). */
function pidFiles(fs: Fs, pid: number, o: ProcOptions): Files {
  const view = (): ProcessView | undefined => o.processes().get(pid);
  return {
    cmdline: () => new GeneratedInode(fs, () => text(cmdlineOf(view()))),
    comm: () =>
      commFile(
        fs,
        pid,
        () => view()?.comm ?? "",
        (name) => view()?.setComm(name),
      ),
    environ: () => new GeneratedInode(fs, () => view()?.environ() ?? Buffer.alloc(0), 0o400),
    auxv: () => new GeneratedInode(fs, () => view()?.auxv() ?? Buffer.alloc(0), 0o400),
    exe: () => new SymlinkInode(fs, () => view()?.exe ?? "", 0, 0),
    cwd: () => new SymlinkInode(fs, () => view()?.cwd() ?? "/", 0, 0),
    root: () => new SymlinkInode(fs, () => view()?.root() ?? "/", 0, 0),
    mounts: () => new GeneratedInode(fs, () => text(o.mounts())),
    mountinfo: () => new GeneratedInode(fs, () => text(o.mountinfo())),
    maps: () => new GeneratedInode(fs, () => text(mapsText(view()?.maps() ?? []))),
    limits: () => new GeneratedInode(fs, () => text(limitsText(view()?.rlimits() ?? new Map()))),
    statm: () => new GeneratedInode(fs, () => text(statmText(view()))),
    mem: () => new OpenableInode(fs, 0o600, (inode, flags) => new ProcMemFile(inode, flags, view)),
    oom_score_adj: () =>
      new GeneratedInode(
        fs,
        () => text(`${view()?.oomScoreAdj ?? 0}\n`),
        0o644,
        (ctx, data) => {
          const v = view();
          if (!v) fail("ESRCH");
          const adj = intArg(data, -1000, 1000);
          // Lowering it takes CAP_SYS_RESOURCE: root in the sandbox.
          if (adj < v.oomScoreAdj && ctx.cred.uid !== 0) fail("EACCES");
          v.oomScoreAdj = adj;
          return data.length;
        },
      ),
    // The reader is running (it reads this file), whatever wait its read went through.
    stat: () =>
      new GeneratedInode(fs, (ctx) => {
        const v = view();
        return text(v ? statLine(v, o.bootNs, ctx.pid === pid) : "");
      }),
    status: () =>
      new GeneratedInode(fs, (ctx) => {
        const v = view();
        return text(v ? statusText(v, ctx.pid === pid) : "");
      }),
    fd: (dir) =>
      new SynthDir(
        fs,
        dir,
        "fd",
        () => [...(view()?.fds().keys() ?? [])].map(String),
        (name) =>
          new MagicLink(
            fs,
            () => describe(view()?.fds().get(Number(name))),
            () => view()?.fds().get(Number(name)),
          ),
        0o500,
      ),
    fdinfo: (dir) =>
      new SynthDir(
        fs,
        dir,
        "fdinfo",
        () => [...(view()?.fds().keys() ?? [])].map(String),
        (name) =>
          new GeneratedInode(fs, () => {
            const v = view();
            const d = v?.fds().get(Number(name));
            return text(d && v ? fdinfoText(d, v.cloexec(Number(name)), o.mountId(d.stat().dev)) : "");
          }),
        0o500,
      ),
  };
}

function pidDir(fs: Fs, pid: number, o: ProcOptions): SynthDir {
  const view = (): ProcessView | undefined => o.processes().get(pid);
  const tasks = new Map<number, SynthDir>();
  const files: Files = {
    ...pidFiles(fs, pid, o),
    task: (dir) =>
      new SynthDir(
        fs,
        dir,
        "task",
        () => (view()?.threads() ?? []).map((t) => String(t.tid)),
        (name) => {
          const tid = Number(name);
          let d = tasks.get(tid);
          if (!d) {
            d = taskDir(fs, pid, tid, o);
            tasks.set(tid, d);
          }
          return d;
        },
      ),
  };
  // ps takes a process's user from the owner of its /proc directory, as Linux sets it.
  return ownedDir(fs, String(pid), files, view());
}

/** What readlink of /proc/self/fd/N shows. */
function describe(d: FileDescription | undefined): string {
  if (!d) return "";
  const s = d.stat();
  const type = s.mode & 0o170000;
  if (type === 0o010000) return `pipe:[${s.ino}]`;
  if (type === 0o140000) return `socket:[${s.ino}]`;
  const named = (d as { path?: string }).path;
  return named ?? `anon_inode:[${s.ino}]`;
}

export function makeProcFs(fs: Fs, o: ProcOptions): DirInode {
  const pidDirs = new Map<number, SynthDir>();
  const files: Record<string, (dir: SynthDir) => Inode> = {
    self: () => new SymlinkInode(fs, (ctx: Ctx) => String(ctx.pid), 0, 0),
    "thread-self": () => new SymlinkInode(fs, (ctx: Ctx) => `${ctx.pid}/task/${ctx.tid ?? ctx.pid}`, 0, 0),
    sys: (dir) => sysDir(fs, dir, o),
    cpuinfo: () => new GeneratedInode(fs, () => text(cpuinfo())),
    meminfo: () => new GeneratedInode(fs, () => text(meminfoText(o.memory()))),
    stat: () => new GeneratedInode(fs, () => text(statText(o.bootNs, o.bootRealtimeS, o.processes()))),
    version: () => new GeneratedInode(fs, () => text(`${o.version}\n`)),
    mounts: () => new SymlinkInode(fs, "self/mounts", 0, 0),
    cmdline: () => new GeneratedInode(fs, () => text("BOOT_IMAGE=moat ro\n")),
    devices: () =>
      new GeneratedInode(fs, () =>
        text(
          "Character devices:\n  1 mem\n  4 /dev/vc/0\n  5 /dev/tty\n  5 /dev/console\n  5 /dev/ptmx\n\nBlock devices:\n",
        ),
      ),
    uptime: () => new GeneratedInode(fs, () => text(uptimeText(o.bootNs, o.processes()))),
    loadavg: () => new GeneratedInode(fs, () => text(loadavgText(o.processes()))),
    filesystems: () =>
      new GeneratedInode(fs, () => text("nodev\ttmpfs\nnodev\tproc\nnodev\toverlay\nnodev\tpipefs\n")),
  };
  return new SynthDir(
    fs,
    null,
    "proc",
    () => [...Object.keys(files), ...o.processes().pids().map(String)],
    (name, dir) => {
      const f = files[name];
      if (f) return f(dir);
      const pid = Number(name);
      let d = pidDirs.get(pid);
      if (!d) {
        d = pidDir(fs, pid, o);
        pidDirs.set(pid, d);
      }
      return d;
    },
  );
}

/** /proc/sys: the few settings programs read (python's and glibc's probes, hostname, limits). */
function sysDir(fs: Fs, parent: SynthDir, o: ProcOptions): SynthDir {
  const value = (f: (ctx: Ctx) => string) => () => new GeneratedInode(fs, (ctx) => text(`${f(ctx)}\n`));
  const view = (ctx: Ctx): ProcessView | undefined => o.processes().get(ctx.pid);
  // One per kernel: each sandbox is a boot.
  const bootId = randomUUID();
  type Tree = { [name: string]: Tree | (() => Inode) };
  const tree: Tree = {
    kernel: {
      pid_max: value(() => String(PID_MAX)),
      ngroups_max: value(() => String(NGROUPS_MAX)),
      hostname: value((ctx) => view(ctx)?.hostname() ?? ""),
      domainname: value((ctx) => view(ctx)?.domainname() ?? "(none)"),
      // "Linux version 6.1.0-moat ..." -> "6.1.0-moat", as uname -r.
      osrelease: value(() => o.version.split(" ")[2] ?? ""),
      ostype: value(() => "Linux"),
      // The loader randomises the stack, mmap base and brk (as Linux's full randomisation).
      randomize_va_space: value(() => "2"),
      // CAP_CHECKPOINT_RESTORE, the last capability of Linux 6.1.
      cap_last_cap: value(() => "40"),
      overflowuid: value(() => "65534"),
      overflowgid: value(() => "65534"),
      random: { uuid: value(() => randomUUID()), boot_id: value(() => bootId) },
      keys: { maxkeys: value(() => "200"), maxbytes: value(() => "20000") },
    },
    fs: {
      "pipe-max-size": value(() => String(PIPE_MAX_SIZE)),
    },
    vm: {
      max_map_count: value(() => "65530"),
      mmap_min_addr: value(() => "65536"),
      overcommit_memory: value(() => "0"),
    },
  };
  const dir = (name: string, parentDir: SynthDir, t: Tree): SynthDir =>
    new SynthDir(
      fs,
      parentDir,
      name,
      () => Object.keys(t),
      (n, d) => {
        const e = t[n]!;
        return typeof e === "function" ? e() : dir(n, d, e);
      },
    );
  return dir("sys", parent, tree);
}
