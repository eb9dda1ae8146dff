// A minimal /proc: enough for programs that look up who they are and what they run on, and
// for ps, top and free. Present: /proc/self, /proc/<pid>/{cmdline,comm,exe,cwd,root,fd/,
// mounts,mountinfo,stat,status}, /proc/cpuinfo, meminfo, stat, version, mounts, self/mounts,
// uptime, loadavg, filesystems (the formats of proc(5); stat and status in proc-pid.ts, the
// sandbox-wide files in proc-system.ts).
// Missing (ENOENT): /proc/<pid>/{maps,environ}, /proc/sys and the rest.
import * as os from "node:os";
import type { FileDescription } from "../kernel/fdtable.js";
import type { MemoryFigures } from "../mm/usage.js";
import { type Ctx, DirInode, type Fs, GeneratedInode, type Inode, SymlinkInode } from "./inode.js";
import { statLine, statusText } from "./proc-pid.js";
import { loadavgText, meminfoText, statText, uptimeText } from "./proc-system.js";
import type { ProcessSource, ProcessView } from "./proc-types.js";
import { dtype } from "./stat.js";

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
  /** /proc/<pid>/mountinfo. */
  mountinfo: () => string;
  /** The sandbox's memory, for /proc/meminfo. */
  memory: () => MemoryFigures;
  /** The real-time clock at boot, in seconds since the epoch (/proc/stat's btime). */
  bootRealtimeS: number;
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

function pidDir(fs: Fs, pid: number, o: ProcOptions, name = String(pid)): SynthDir {
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
    comm: () => new GeneratedInode(fs, () => text(`${view()?.comm ?? ""}\n`)),
    exe: () => new SymlinkInode(fs, () => view()?.exe ?? "", 0, 0),
    cwd: () => new SymlinkInode(fs, () => view()?.cwd() ?? "/", 0, 0),
    root: () => new SymlinkInode(fs, "/", 0, 0),
    mounts: () => new GeneratedInode(fs, () => text(o.mounts())),
    mountinfo: () => new GeneratedInode(fs, () => text(o.mountinfo())),
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
  };
  // One entry per thread; each shows its process's files (threads have no views of their own yet).
  files.task = (dir) =>
    new SynthDir(
      fs,
      dir,
      "task",
      () => (view()?.tids?.() ?? [pid]).map(String),
      (name) => pidDir(fs, pid, o, name),
      0o555,
    );
  const dir = new SynthDir(
    fs,
    null,
    name,
    () => Object.keys(files),
    (name, dir) => files[name]!(dir),
  );
  // ps takes a process's user from the owner of its /proc directory, as Linux sets it.
  const v = view();
  if (v) {
    dir.uid = v.uid;
    dir.gid = v.gid;
  }
  return dir;
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
  const files: Record<string, () => Inode> = {
    self: () => new SymlinkInode(fs, (ctx: Ctx) => String(ctx.pid), 0, 0),
    cpuinfo: () => new GeneratedInode(fs, () => text(cpuinfo())),
    meminfo: () => new GeneratedInode(fs, () => text(meminfoText(o.memory()))),
    stat: () => new GeneratedInode(fs, () => text(statText(o.bootNs, o.bootRealtimeS, o.processes()))),
    version: () => new GeneratedInode(fs, () => text(`${o.version}\n`)),
    mounts: () => new GeneratedInode(fs, () => text(o.mounts())),
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
