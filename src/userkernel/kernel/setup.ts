// A new process's setup from the sandbox's configuration: OCI resource limits, and the view
// of it that /proc shows.
import { readFileSync } from "node:fs";
import { MoatError } from "../../spec/errors.js";
import type { Rlimit } from "../../spec/runtime.js";
import { KernelError } from "../errno.js";
import { PAGE } from "../mm/memfile.js";
import type { ProcessView, Vfs } from "../vfs/index.js";
import type { FdTable } from "./fdtable.js";
import { processMaps } from "./proc-maps.js";
import { procState } from "./proc-state.js";
import { SIG_DFL, SIG_IGN } from "./signals-state.js";
import type { Task } from "./task.js";
import { defaultRlimits, type Rlimits, type ThreadGroup } from "./thread-group.js";

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

/** A new process's limits: Linux's defaults with the OCI ones applied; NOFILE bounds `fds`. */
export function rlimitsOf(limits: readonly Rlimit[], fds: FdTable): Rlimits {
  const out = defaultRlimits();
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
    out.set(nr, [soft, hard]);
    if (l.type === "RLIMIT_NOFILE") fds.limit = Number(soft > BigInt(NR_OPEN) ? BigInt(NR_OPEN) : soft);
  }
  return out;
}

/** The CPU time and resident pages of a stub, as the host counts them (zeros once it is gone). */
export function hostUsage(hostPid: number): { utime: number; stime: number; rss: number } {
  try {
    const stat = readFileSync(`/proc/${hostPid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14, 15 and 24 of proc(5), counted from the state (field 3).
    return { utime: Number(f[11]), stime: Number(f[12]), rss: Number(f[21]) };
  } catch {
    return { utime: 0, stime: 0, rss: 0 };
  }
}

/**
 * The CPU time (clock ticks) and resident pages of a thread group: the sum over its tasks'
 * host contexts (one stub each for now).
 */
export function groupUsage(group: ThreadGroup<Task>): { utime: number; stime: number; rss: number } {
  const sum = { utime: 0, stime: 0, rss: 0 };
  const seen = new Set<number>();
  for (const t of group.tasks) {
    if (seen.has(t.mm.hostPid)) continue;
    seen.add(t.mm.hostPid);
    const h = hostUsage(t.mm.hostPid);
    sum.utime += h.utime;
    sum.stime += h.stime;
    sum.rss += h.rss;
  }
  return sum;
}

/**
 * What /proc shows of one process, from the pid namespace's group: the leader's thread
 * state (the first task once the leader is gone) and the group's.
 */
export function processView(group: ThreadGroup<Task>, vfs: Vfs): ProcessView | undefined {
  const first = group.leader;
  if (!first) return undefined;
  const task = () => group.leader ?? first;
  const state = procState(first);
  return {
    pid: group.tgid,
    get ppid() {
      return group.ppid;
    },
    get cmdline() {
      return group.cmdline;
    },
    layout: () => ({
      startStack: state.startStack,
      argStart: state.argStart,
      argEnd: state.argEnd,
      envStart: state.envStart,
      envEnd: state.envEnd,
      brkStart: task().mm.brkStart,
    }),
    auxv: () =>
      state.auxvEnd > state.auxvStart
        ? task().mm.read(state.auxvStart, state.auxvEnd - state.auxvStart, "force")
        : Buffer.alloc(0),
    environ: () =>
      state.envEnd > state.envStart
        ? task().mm.read(state.envStart, state.envEnd - state.envStart, "force")
        : Buffer.alloc(0),
    get exe() {
      return group.exe;
    },
    get comm() {
      return task().comm;
    },
    setComm: (name) => {
      task().comm = name;
    },
    cwd: () => vfs.pathOf(task().fs.cwd ?? vfs.root),
    root: () => vfs.pathOf(task().fs.root ?? vfs.root),
    get uid() {
      return task().creds.uid;
    },
    get gid() {
      return task().creds.gid;
    },
    get groups() {
      return task().groups;
    },
    get umask() {
      return task().fs.umask;
    },
    state: () => ([...group.tasks].some((t) => !t.blockedOn) ? "R" : "S"),
    startNs: group.startNs,
    get pgid() {
      return group.pgid;
    },
    get sid() {
      return group.sid;
    },
    usage: () => {
      const h = groupUsage(group);
      const vsize = task()
        .mm.list()
        .reduce((n, v) => n + (v.end - v.start), 0);
      return { utimeTicks: h.utime, stimeTicks: h.stime, vsize, rssPages: h.rss };
    },
    signals: () => {
      let ignored = 0n;
      let caught = 0n;
      const t = task();
      for (const [sig, act] of t.sighand.actions) {
        const bit = 1n << BigInt(sig - 1);
        if (act.handler === SIG_IGN) ignored |= bit;
        else if (act.handler !== SIG_DFL) caught |= bit;
      }
      return { pending: t.pending | group.pending, blocked: t.sigmask, ignored, caught };
    },
    fds: () => task().fds.entries(),
    cloexec: (fd) => task().fds.getCloexec(fd),
    memRead: (at, length) => memAccess(at, length, (a, n) => task().mm.read(a, n, "force")),
    memWrite: (at, data) =>
      memAccess(at, data.length, (a, n, done) => {
        task().mm.write(a, data.subarray(done, done + n), "force");
        return Buffer.alloc(n);
      }).length,
    maps: () => processMaps(task()),
    rlimits: () => group.rlimits,
    get oomScoreAdj() {
      return state.oomScoreAdj;
    },
    set oomScoreAdj(v: number) {
      state.oomScoreAdj = v;
    },
    threads: () =>
      [...group.tasks].map((t) => ({ tid: t.tid, comm: t.comm, state: () => (t.blockedOn ? "S" : "R") })),
    hostname: () => first.kernel.hostname,
    domainname: () => first.kernel.domainname,
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
