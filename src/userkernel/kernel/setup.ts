// A new process's setup from the sandbox's configuration: OCI resource limits, and the view
// of it that /proc shows.
import { MoatError } from "../../spec/errors.js";
import type { Rlimit } from "../../spec/runtime.js";
import type { ProcessView, Vfs } from "../vfs/index.js";
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

/** What /proc shows of one process. */
export function processView(task: Task, vfs: Vfs): ProcessView {
  return {
    pid: task.pid,
    ppid: task.ppid,
    get cmdline() {
      return task.cmdline;
    },
    get exe() {
      return task.exe;
    },
    cwd: () => vfs.pathOf(task.cwd ?? vfs.root),
    get uid() {
      return task.creds.uid;
    },
    get gid() {
      return task.creds.gid;
    },
    fds: () => task.fds.entries(),
  };
}
