// A new process's setup from the sandbox's configuration: OCI resource limits, and the view
// of it that /proc shows.
import { readFileSync } from "node:fs";
import { MoatError } from "../../spec/errors.js";
import type { Rlimit } from "../../spec/runtime.js";
import { KernelError } from "../errno.js";
import { PAGE } from "../mm/memfile.js";
import type { ProcessView, Vfs } from "../vfs/index.js";
import { processMaps } from "./proc-maps.js";
import { noteInitialStack, procState } from "./proc-state.js";
import type { Task } from "./task.js";

const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};
/** The most descriptors a process may have (Linux's default fs.nr_open). */
const NR_OPEN = 1048576;

export function applyRlimits(task: Task, limits: readonly Rlimit[]): void {
  for (const l of limits) {
    const nr = RLIMITS[l.type];
    if (nr === undefined) {
      throw new MoatError(
        "EINVAL",
        `unknown rlimit ${l.type}: use one of ${Object.keys(RLIMITS).join(", ")}`,
      );
    }
    const [soft, hard] = [BigInt(l.soft), BigInt(l.hard)];
    if (soft > hard || soft < 0n) {
      throw new MoatError(
        "EINVAL",
        `rlimit ${l.type} has soft ${l.soft} above hard ${l.hard}: make soft <= hard`,
      );
    }
    task.rlimits.set(nr, [soft, hard]);
    if (l.type === "RLIMIT_NOFILE") task.fds.limit = Number(soft > BigInt(NR_OPEN) ? BigInt(NR_OPEN) : soft);
  }
}

/** The CPU time and resident pages of a stub, as the host counts them (zeros once it is gone). */
function hostUsage(hostPid: number): { utime: number; stime: number; rss: number } {
  try {
    const stat = readFileSync(`/proc/${hostPid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14, 15 and 24 of proc(5), counted from the state (field 3).
    return { utime: Number(f[11]), stime: Number(f[12]), rss: Number(f[21]) };
  } catch {
    return { utime: 0, stime: 0, rss: 0 };
  }
}

const SIG_DFL = 0n;
const SIG_IGN = 1n;

/** What /proc shows of one process; `hostPid` is its stub's (whose CPU time is the process's). */
export function processView(task: Task, vfs: Vfs, hostPid: number): ProcessView {
  // Made right after the load, while the registers hold the entry stack pointer.
  noteInitialStack(task);
  const state = procState(task);
  return {
    pid: task.pid,
    ppid: task.ppid,
    get cmdline() {
      return task.cmdline;
    },
    layout: () => ({
      startStack: state.startStack,
      argStart: state.argStart,
      argEnd: state.argEnd,
      envStart: state.envStart,
      envEnd: state.envEnd,
      brkStart: task.mm.brkStart,
    }),
    auxv: () =>
      state.auxvEnd > state.auxvStart
        ? task.mm.read(state.auxvStart, state.auxvEnd - state.auxvStart, "force")
        : Buffer.alloc(0),
    environ: () =>
      state.envEnd > state.envStart
        ? task.mm.read(state.envStart, state.envEnd - state.envStart, "force")
        : Buffer.alloc(0),
    get exe() {
      return task.exe;
    },
    get comm() {
      return task.comm;
    },
    setComm: (name) => {
      task.comm = name;
    },
    cwd: () => vfs.pathOf(task.cwd ?? vfs.root),
    root: () => vfs.pathOf(task.root ?? vfs.root),
    get uid() {
      return task.creds.uid;
    },
    get gid() {
      return task.creds.gid;
    },
    get groups() {
      return task.groups;
    },
    get umask() {
      return task.umask;
    },
    state: () => (task.sleeping ? "S" : "R"),
    startNs: task.startNs,
    usage: () => {
      const h = hostUsage(hostPid);
      const vsize = task.mm.list().reduce((n, v) => n + (v.end - v.start), 0);
      return { utimeTicks: h.utime, stimeTicks: h.stime, vsize, rssPages: h.rss };
    },
    signals: () => {
      let ignored = 0n;
      let caught = 0n;
      for (const [sig, act] of task.sigactions) {
        const bit = 1n << BigInt(sig - 1);
        if (act.handler === SIG_IGN) ignored |= bit;
        else if (act.handler !== SIG_DFL) caught |= bit;
      }
      return { pending: task.pendingSignals, blocked: task.sigmask, ignored, caught };
    },
    fds: () => task.fds.entries(),
    cloexec: (fd) => task.fds.getCloexec(fd),
    memRead: (at, length) => memAccess(at, length, (a, n) => task.mm.read(a, n, "force")),
    memWrite: (at, data) =>
      memAccess(at, data.length, (a, n, done) => {
        task.mm.write(a, data.subarray(done, done + n), "force");
        return Buffer.alloc(n);
      }).length,
    maps: () => processMaps(task),
    rlimits: () => task.rlimits,
    get oomScoreAdj() {
      return state.oomScoreAdj;
    },
    set oomScoreAdj(v: number) {
      state.oomScoreAdj = v;
    },
    // One thread per process: the task is the process's only thread.
    threads: () => [{ tid: task.tid, comm: task.comm, state: () => (task.sleeping ? "S" : "R") }],
    hostname: () => task.kernel.hostname,
    domainname: () => task.kernel.domainname,
  };
}

/** Page by page from `at` until an unmapped page: what /proc/<pid>/mem reaches (EIO: nothing). */
function memAccess(
  at: number,
  length: number,
  op: (addr: number, n: number, done: number) => Buffer,
): Buffer {
  const parts: Buffer[] = [];
  let done = 0;
  while (done < length) {
    const a = at + done;
    const n = Math.min(length - done, PAGE - (a % PAGE));
    try {
      parts.push(op(a, n, done));
    } catch {
      break;
    }
    done += n;
  }
  if (done === 0) throw new KernelError("EIO");
  return Buffer.concat(parts);
}
