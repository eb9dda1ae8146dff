// A minimal /proc: enough for programs that look up who they are and what they run on.
// Present: /proc/self, /proc/<pid>/{cmdline,comm,exe,cwd,root,fd/,mounts,status},
// /proc/cpuinfo, meminfo, version, mounts, uptime, loadavg, filesystems.
// Missing (ENOENT): /proc/<pid>/{maps,stat,environ,task}, /proc/sys, /proc/stat and the rest.
import * as os from "node:os";
import type { FileDescription } from "../kernel/fdtable.js";
import { type Ctx, DirInode, type Fs, GeneratedInode, type Inode, SymlinkInode } from "./inode.js";
import { dtype } from "./stat.js";

/** What /proc shows of one process of the sandbox; the kernel's task list provides it. */
export interface ProcessView {
  pid: number;
  ppid: number;
  /** argv, as byte strings. */
  cmdline: string[];
  /** The executable's path in the container. */
  exe: string;
  /** The working directory's path in the container. */
  cwd: () => string;
  uid: number;
  gid: number;
  /** The process's descriptors, for /proc/<pid>/fd. */
  fds: () => Map<number, FileDescription>;
}

export interface ProcessSource {
  get(pid: number): ProcessView | undefined;
  pids(): number[];
}

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
  /** /proc/version's line, e.g. "Linux version 6.1.0-moat ...". */
  version: string;
  bootNs: bigint;
}

function cpuinfo(): string {
  return os
    .cpus()
    .map(
      (c, i) =>
        `processor\t: ${i}\nvendor_id\t: moat\nmodel name\t: ${c.model}\ncpu MHz\t\t: ${c.speed.toFixed(3)}\n` +
        `physical id\t: 0\ncore id\t\t: ${i}\ncpu cores\t: ${os.cpus().length}\n\n`,
    )
    .join("");
}

function meminfo(): string {
  const kb = (n: number): string => `${String(Math.floor(n / 1024)).padStart(8)} kB`;
  const total = os.totalmem();
  const free = os.freemem();
  return [
    `MemTotal:       ${kb(total)}`,
    `MemFree:        ${kb(free)}`,
    `MemAvailable:   ${kb(free)}`,
    `Buffers:        ${kb(0)}`,
    `Cached:         ${kb(0)}`,
    `SwapTotal:      ${kb(0)}`,
    `SwapFree:       ${kb(0)}`,
    "",
  ].join("\n");
}

function pidDir(fs: Fs, pid: number, o: ProcOptions): SynthDir {
  const view = (): ProcessView | undefined => o.processes().get(pid);
  const files: Record<string, (dir: SynthDir) => Inode> = {
    cmdline: () =>
      new GeneratedInode(fs, () =>
        text(
          view()
            ?.cmdline.map((a) => `${a}\0`)
            .join("") ?? "",
        ),
      ),
    comm: () =>
      new GeneratedInode(fs, () => text(`${(view()?.exe ?? "").split("/").pop()?.slice(0, 15) ?? ""}\n`)),
    exe: () => new SymlinkInode(fs, () => view()?.exe ?? "", 0, 0),
    cwd: () => new SymlinkInode(fs, () => view()?.cwd() ?? "/", 0, 0),
    root: () => new SymlinkInode(fs, "/", 0, 0),
    mounts: () => new GeneratedInode(fs, () => text(o.mounts())),
    status: () =>
      new GeneratedInode(fs, () => {
        const v = view();
        if (!v) return text("");
        const name = v.exe.split("/").pop()?.slice(0, 15) ?? "";
        return text(
          `Name:\t${name}\nState:\tR (running)\nTgid:\t${pid}\nPid:\t${pid}\nPPid:\t${v.ppid}\n` +
            `Uid:\t${v.uid}\t${v.uid}\t${v.uid}\t${v.uid}\nGid:\t${v.gid}\t${v.gid}\t${v.gid}\t${v.gid}\n` +
            `Threads:\t1\n`,
        );
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
  };
  return new SynthDir(
    fs,
    null,
    String(pid),
    () => Object.keys(files),
    (name, dir) => files[name]!(dir),
  );
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
  const uptime = (): string => {
    const s = Number(process.hrtime.bigint() - o.bootNs) / 1e9;
    return `${s.toFixed(2)} ${s.toFixed(2)}\n`;
  };
  const files: Record<string, () => Inode> = {
    self: () => new SymlinkInode(fs, (ctx: Ctx) => String(ctx.pid), 0, 0),
    cpuinfo: () => new GeneratedInode(fs, () => text(cpuinfo())),
    meminfo: () => new GeneratedInode(fs, () => text(meminfo())),
    version: () => new GeneratedInode(fs, () => text(`${o.version}\n`)),
    mounts: () => new GeneratedInode(fs, () => text(o.mounts())),
    uptime: () => new GeneratedInode(fs, () => text(uptime())),
    loadavg: () => new GeneratedInode(fs, () => text("0.00 0.00 0.00 1/1 1\n")),
    filesystems: () =>
      new GeneratedInode(fs, () => text("nodev\ttmpfs\nnodev\tproc\nnodev\toverlay\nnodev\tpipefs\n")),
  };
  return new SynthDir(
    fs,
    null,
    "proc",
    () => [...Object.keys(files), ...o.processes().pids().map(String)],
    (name) => {
      const f = files[name];
      if (f) return f();
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
