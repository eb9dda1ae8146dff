// wait4 and waitid: their arguments as one WaitRequest (kernel/waitchild.ts), and what they
// write back: the wait status, the siginfo of the child, the child's rusage.
import { fail } from "../errno.js";
import type { Task } from "../kernel/task.js";
import {
  __WALL,
  __WCLONE,
  __WNOTHREAD,
  type WaitReport,
  type WaitWho,
  WCONTINUED,
  WEXITED,
  WNOHANG,
  WNOWAIT,
  WSTOPPED,
  WUNTRACED,
  waitForChild,
  wstatusOf,
} from "../kernel/waitchild.js";
import { addr, type Handler, int } from "./types.js";

const WAIT4_OPTIONS = WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL;
const WAITID_OPTIONS = WNOHANG | WNOWAIT | WEXITED | WSTOPPED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL;
const INT_MIN = -2147483648;
const SIGCHLD = 17;
const SIGCONT = 18;
/** USER_HZ ticks to microseconds. */
const TICK_US = 10_000;

// waitid's idtype.
const P_ALL = 0;
const P_PID = 1;
const P_PGID = 2;
const P_PIDFD = 3;

// siginfo si_code for SIGCHLD.
const CLD_EXITED = 1;
const CLD_KILLED = 2;
const CLD_DUMPED = 3;
const CLD_STOPPED = 5;
const CLD_CONTINUED = 6;

/** struct rusage: the child's CPU time (its own and its reaped children's); the rest 0. */
function writeRusage(t: Task, at: number, r: WaitReport): void {
  const b = Buffer.alloc(144);
  const c = r.child;
  const timeval = (off: number, ticks: number): void => {
    b.writeBigInt64LE(BigInt(Math.floor(ticks / 100)), off);
    b.writeBigInt64LE(BigInt((ticks % 100) * TICK_US), off + 8);
  };
  timeval(0, c.cpuTicks.utime + c.childTicks.utime);
  timeval(16, c.cpuTicks.stime + c.childTicks.stime);
  t.mm.write(at, b);
}

export const wait4: Handler = (t, a) => {
  const pid = int(a[0]);
  const statusAt = addr(a[1]);
  const options = int(a[2]);
  const rusageAt = addr(a[3]);
  if (options & ~WAIT4_OPTIONS) fail("EINVAL");
  if (pid === INT_MIN) fail("ESRCH");
  const who: WaitWho =
    pid === -1 ? { all: true } : pid < -1 ? { pgid: -pid } : pid === 0 ? { pgid: t.group.pgid } : { pid };
  return then(waitForChild(t, { who, options: options | WEXITED }), (r) => {
    if (!r) return 0;
    if (statusAt !== 0) t.mm.writeU32(statusAt, wstatusOf(r));
    if (rusageAt !== 0) writeRusage(t, rusageAt, r);
    return r.child.tgid;
  });
};

/** `f` of a value now, or once a promise of it resolves (most waits need no promise). */
function then<T>(v: T | Promise<T>, f: (x: T) => number): number | Promise<number> {
  return v instanceof Promise ? v.then(f) : f(v);
}

function siginfoOf(r: WaitReport): { code: number; status: number } {
  if (r.kind === "stopped") return { code: CLD_STOPPED, status: r.signal! };
  if (r.kind === "continued") return { code: CLD_CONTINUED, status: SIGCONT };
  const s = r.status!;
  if ("code" in s) return { code: CLD_EXITED, status: s.code };
  return { code: s.core ? CLD_DUMPED : CLD_KILLED, status: s.signal };
}

export const waitid: Handler = (t, a) => {
  const idtype = int(a[0]);
  const id = int(a[1]);
  const infoAt = addr(a[2]);
  const options = int(a[3]);
  const rusageAt = addr(a[4]);
  if (options & ~WAITID_OPTIONS) fail("EINVAL");
  if (!(options & (WEXITED | WSTOPPED | WCONTINUED))) fail("EINVAL");
  let who: WaitWho;
  switch (idtype) {
    case P_ALL:
      who = { all: true };
      break;
    case P_PID:
      if (id <= 0) fail("EINVAL");
      who = { pid: id };
      break;
    case P_PGID:
      if (id < 0) fail("EINVAL");
      who = { pgid: id === 0 ? t.group.pgid : id };
      break;
    case P_PIDFD:
      // No pidfds exist here, so no descriptor is one.
      return fail("EBADF");
    default:
      return fail("EINVAL");
  }
  return then(waitForChild(t, { who, options }), (r) => {
    if (infoAt !== 0) {
      // Nothing to report under WNOHANG: the fields are zeroed, as Linux does.
      const b = Buffer.alloc(128);
      if (r) {
        const { code, status } = siginfoOf(r);
        b.writeInt32LE(SIGCHLD, 0);
        b.writeInt32LE(code, 8);
        b.writeInt32LE(r.child.tgid, 16);
        b.writeUInt32LE(r.child.leader?.creds.uid ?? t.creds.uid, 20);
        b.writeInt32LE(status, 24);
      }
      t.mm.write(infoAt, b.subarray(0, 32));
    }
    if (r && rusageAt !== 0) writeRusage(t, rusageAt, r);
    return 0;
  });
};
