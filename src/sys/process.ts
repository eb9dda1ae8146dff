// Processes the kernel creates and reaps itself. Traced processes must never come from
// child_process: libuv reaps its own children with waitpid and would swallow their ptrace
// stops. posix_spawn through the FFI gives a child libuv knows nothing about.
import { readdirSync } from "node:fs";
import { check, koffi, libc, SysError } from "./libc.js";

// glibc's posix_spawn_file_actions_t is 80 bytes; a larger buffer costs nothing.
const FILE_ACTIONS_SIZE = 128;

const posix_spawn_ = libc.func(
  "int posix_spawn(_Out_ int *pid, const char *path, void *file_actions, void *attr, const char **argv, const char **envp)",
);
const fa_init = libc.func("int posix_spawn_file_actions_init(void *fa)");
const fa_destroy = libc.func("int posix_spawn_file_actions_destroy(void *fa)");
const fa_adddup2 = libc.func("int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)");
const fa_addopen = libc.func(
  "int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int oflag, uint32_t mode)",
);
const fa_addclose = libc.func("int posix_spawn_file_actions_addclose(void *fa, int fd)");
// glibc 2.34+; without it, closing every descriptor this process has open is the fallback.
let fa_addclosefrom: ((fa: Buffer, from: number) => number) | undefined;
try {
  fa_addclosefrom = libc.func("int posix_spawn_file_actions_addclosefrom_np(void *fa, int from)");
} catch {
  fa_addclosefrom = undefined;
}
// glibc's posix_spawnattr_t is 336 bytes.
const SPAWNATTR_SIZE = 512;
/** The child joins the process group set with posix_spawnattr_setpgroup (0: a new one it leads). */
const POSIX_SPAWN_SETPGROUP = 0x2;
const attr_init = libc.func("int posix_spawnattr_init(void *attr)");
const attr_destroy = libc.func("int posix_spawnattr_destroy(void *attr)");
const attr_setflags = libc.func("int posix_spawnattr_setflags(void *attr, short flags)");
const attr_setpgroup = libc.func("int posix_spawnattr_setpgroup(void *attr, int pgroup)");
const setpgid_ = libc.func("int setpgid(int pid, int pgid)");
const waitpid_ = libc.func("int waitpid(int pid, _Out_ int *status, int options)");
const kill_ = libc.func("int kill(int pid, int sig)");
const tgkill_ = libc.func("long syscall(long nr, long tgid, long tid, long sig)");
// waitid as the raw syscall: glibc's wrapper has no rusage argument and checks nothing the
// caller needs; the raw call is the host's interface exactly.
const waitid_ = libc.func("long syscall(long nr, long idtype, long id, void *info, long options, void *ru)");
const getpid_ = libc.func("int getpid(void)");
const sched_rr_get_interval_ = libc.func("int sched_rr_get_interval(int pid, void *ts)");
const membarrier_ = libc.func("long syscall(long nr, long cmd, long flags, long cpu)");
const prctl_ = libc.func(
  "int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)",
);

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;

/** What to do with one descriptor of the child before it execs. */
export type SpawnFileAction =
  | { dup2: number; to: number }
  | { open: string; to: number; flags: number; mode?: number }
  | { close: number }
  /** Close every descriptor from this number up: nothing of the parent leaks by accident. */
  | { closeFrom: number };

export interface SpawnOptions {
  /**
   * A process group of its own, in its parent's session: a terminal sends ^C (and a hangup)
   * to its foreground group only, so they reach the parent, not this child. The session is
   * kept: the OCI monitor finds what it started by its session.
   */
  ownGroup?: boolean;
  /** Join this existing process group instead (ignored with ownGroup). */
  pgroup?: number;
}

/** posix_spawn returns an errno instead of setting errno; turn it into SysError. */
function spawnCheck(what: string, rc: number, detail?: string): void {
  if (rc !== 0) throw new SysError(what, rc, detail);
}

/**
 * Start `path` with exactly `argv` and `env` (no PATH search, nothing inherited but the
 * descriptors the file actions leave open; moat's own descriptors are close-on-exec).
 * Returns the child's pid once the child has exec'd.
 */
export function spawn(
  path: string,
  argv: string[],
  env: string[],
  actions: SpawnFileAction[] = [],
  opts: SpawnOptions = {},
): number {
  const fa = Buffer.alloc(FILE_ACTIONS_SIZE);
  spawnCheck("posix_spawn_file_actions_init", fa_init(fa));
  let attr: Buffer | null = null;
  try {
    if (opts.ownGroup || opts.pgroup !== undefined) {
      const a = Buffer.alloc(SPAWNATTR_SIZE);
      spawnCheck("posix_spawnattr_init", attr_init(a));
      attr = a;
      spawnCheck("posix_spawnattr_setflags", attr_setflags(a, POSIX_SPAWN_SETPGROUP));
      spawnCheck("posix_spawnattr_setpgroup", attr_setpgroup(a, opts.ownGroup ? 0 : (opts.pgroup ?? 0)));
    }
    for (const a of actions) {
      if ("dup2" in a) spawnCheck("posix_spawn_file_actions_adddup2", fa_adddup2(fa, a.dup2, a.to));
      else if ("open" in a)
        spawnCheck(
          "posix_spawn_file_actions_addopen",
          fa_addopen(fa, a.to, a.open, a.flags, a.mode ?? 0),
          a.open,
        );
      else if ("closeFrom" in a) {
        if (fa_addclosefrom)
          spawnCheck("posix_spawn_file_actions_addclosefrom_np", fa_addclosefrom(fa, a.closeFrom));
        else
          for (const name of readdirSync("/proc/self/fd")) {
            const fd = Number(name);
            if (fd >= a.closeFrom) spawnCheck("posix_spawn_file_actions_addclose", fa_addclose(fa, fd));
          }
      } else spawnCheck("posix_spawn_file_actions_addclose", fa_addclose(fa, a.close));
    }
    const pid = [0];
    spawnCheck("posix_spawn", posix_spawn_(pid, path, fa, attr, [...argv, null], [...env, null]), path);
    return pid[0]!;
  } finally {
    if (attr) attr_destroy(attr);
    fa_destroy(fa);
  }
}

/** __WALL: wait for clone children (future task threads) as well as ordinary ones. */
export const WALL = 0x40000000;
export const WNOHANG = 1;

/** A decoded wait status. For a ptrace stop, `event` is the PTRACE_EVENT_* number (or 0). */
export type WaitStatus =
  | { pid: number; kind: "exited"; code: number }
  | { pid: number; kind: "signaled"; signal: number; core: boolean }
  | { pid: number; kind: "stopped"; signal: number; event: number; syscall: boolean }
  | { pid: number; kind: "continued" }
  | { pid: 0; kind: "none" };

/** The Linux encoding of a wait status, as the W* macros of <sys/wait.h> read it. */
export function decodeWaitStatus(pid: number, status: number): WaitStatus {
  if (pid === 0) return { pid: 0, kind: "none" };
  const low = status & 0x7f;
  if (low === 0) return { pid, kind: "exited", code: (status >> 8) & 0xff };
  if ((status & 0xff) === 0x7f) {
    const sig = (status >> 8) & 0xff;
    // TRACESYSGOOD marks syscall stops with bit 7 of the signal.
    return { pid, kind: "stopped", signal: sig & 0x7f, event: (status >> 16) & 0xff, syscall: sig === 0x85 };
  }
  if (status === 0xffff) return { pid, kind: "continued" };
  return { pid, kind: "signaled", signal: low, core: (status & 0x80) !== 0 };
}

const EINTR = 4;

/** waitpid(2) on the calling thread. Blocks unless WNOHANG is given. */
export function waitpidSync(pid: number, flags = WALL): WaitStatus {
  for (;;) {
    const st = [0];
    const r = waitpid_(pid, st, flags);
    if (r < 0) {
      const e = koffi.errno();
      if (e === EINTR) continue;
      throw new SysError("waitpid", e, String(pid));
    }
    return decodeWaitStatus(r, st[0]!);
  }
}

/**
 * waitpid(2) on libuv's threadpool, so the event loop keeps running while a tracee runs.
 * Waiting from another thread of this process still sees the ptrace stops of tracees
 * attached by the main thread, because the kernel checks every thread of the group.
 */
export function waitpidAsync(pid: number, flags = WALL): Promise<WaitStatus> {
  return new Promise((resolve, reject) => {
    const st = [0];
    waitpid_.async(pid, st, flags, (err: unknown, r: number) => {
      if (err) return reject(err);
      // errno of a threadpool call is not readable from here; ECHILD is the only failure
      // that can happen for a pid we spawned and have not reaped yet.
      if (r < 0) return reject(new SysError("waitpid", 10, String(pid)));
      resolve(decodeWaitStatus(r, st[0]!));
    });
  });
}

const NR_TGKILL = 234;
const NR_WAITID = 247;
export const P_PGID = 2;
export const WEXITED = 4;
export const WSTOPPED = 2;
export const WNOWAIT = 0x01000000;

/** tgkill(2): a signal to one thread; false when the thread is gone. */
export function tgkill(tgid: number, tid: number, sig: number): boolean {
  return Number(tgkill_(NR_TGKILL, tgid, tid, sig)) === 0;
}

/** The part of waitid's siginfo that names who changed state; pid 0 when nothing did (WNOHANG). */
export interface WaitIdResult {
  pid: number;
  /** CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED, CLD_STOPPED, CLD_CONTINUED. */
  code: number;
  status: number;
}

function decodeWaitId(info: Buffer): WaitIdResult {
  // siginfo_t for SIGCHLD: si_signo, si_errno, si_code, then si_pid, si_uid, si_status.
  return { pid: info.readInt32LE(16), code: info.readInt32LE(8), status: info.readInt32LE(24) };
}

/**
 * waitid(2) on libuv's threadpool. With WNOWAIT it only peeks: the child's state change
 * stays to be consumed by a waitpid of that pid, so a peek can never steal a stop from a
 * synchronous waitpid running on the main thread at the same time. Rejects with the errno
 * (ECHILD when nothing matches).
 */
export function waitidAsync(idtype: number, id: number, options: number): Promise<WaitIdResult> {
  return new Promise((resolve, reject) => {
    const info = Buffer.alloc(128);
    waitid_.async(NR_WAITID, idtype, id, info, options, null, (err: unknown, r: number | bigint) => {
      if (err) return reject(err);
      const n = Number(r);
      // The raw syscall returns -1 and the errno lives in the pool thread: report ECHILD,
      // the one failure a wait for a live group of ours can meet.
      if (n < 0) return reject(new SysError("waitid", 10, String(id)));
      resolve(decodeWaitId(info));
    });
  });
}

export function kill(pid: number, sig: number): void {
  check("kill", kill_(pid, sig), `${pid} ${sig}`);
}

/** kill that tolerates a process which is already gone. */
export function killQuietly(pid: number, sig: number): boolean {
  return kill_(pid, sig) === 0;
}

export function getpid(): number {
  return getpid_();
}

/** sched_rr_get_interval(2) of a host thread: the quantum the host's scheduler gives it. */
export function schedRrGetInterval(tid: number): { sec: number; nsec: number } {
  const ts = Buffer.alloc(16);
  check("sched_rr_get_interval", sched_rr_get_interval_(tid, ts), String(tid));
  return { sec: Number(ts.readBigInt64LE(0)), nsec: Number(ts.readBigInt64LE(8)) };
}

const NR_MEMBARRIER = 324;
const MEMBARRIER_CMD_GLOBAL = 1;

/**
 * membarrier(MEMBARRIER_CMD_GLOBAL): returns once every thread of the host that was running
 * has passed a full memory barrier. False when the host refuses it.
 */
export function membarrierGlobal(): boolean {
  return Number(membarrier_(NR_MEMBARRIER, MEMBARRIER_CMD_GLOBAL, 0, 0)) === 0;
}

export const PR_SET_PDEATHSIG = 1;
export const PR_GET_PDEATHSIG = 2;
export const PR_SET_NAME = 15;

/** setpgid(2): setpgid(0, 0) makes the caller lead a new process group. */
export function setpgid(pid = 0, pgid = 0): void {
  check("setpgid", setpgid_(pid, pgid), String(pid));
}

export function prctl(option: number, a2 = 0, a3 = 0, a4 = 0, a5 = 0): number {
  return check("prctl", prctl_(option, a2, a3, a4, a5), String(option));
}
