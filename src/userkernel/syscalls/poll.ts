// Waiting on several descriptors: poll, ppoll, select, pselect6. Readiness comes from each
// description's poll() (absent: always readable and writable, like a regular file on Linux);
// when nothing is ready the task blocks once on the wait queues of all the descriptions, each
// for the events asked of it, with the timeout as the block's deadline (kernel/wait.ts).
import { fail, KernelError } from "../errno.js";
import {
  type FileDescription,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  POLLPRI,
} from "../kernel/fdtable.js";
import type { Task } from "../kernel/task.js";
import { block, type Wait } from "../kernel/wait.js";
import { addr, type Handler, int, long, uint } from "./types.js";

const NS = 1_000_000_000n;
/** Linux caps nfds at RLIMIT_NOFILE; FD_SETSIZE bounds select. */
const FD_SETSIZE = 1024;
/** A pollfd is { int fd; short events; short revents; }. */
const POLLFD_SIZE = 8;

const POLLRDNORM = 0x40;
const POLLWRNORM = 0x100;

/**
 * What `d` is ready for. Linux's pipes, streams and regular files report POLLRDNORM with
 * POLLIN and POLLWRNORM with POLLOUT, so a program may ask for either name. A description
 * that cannot wait (a regular file) is always ready for both, whatever its access mode
 * (Linux's DEFAULT_POLLMASK): a read or write then fails at once instead of waiting.
 */
function readiness(d: FileDescription): number {
  const r = d.poll ? d.poll() : POLLIN | POLLOUT;
  return r | (r & POLLIN ? POLLRDNORM : 0) | (r & POLLOUT ? POLLWRNORM : 0);
}

/**
 * The wait on `d` for `events` (plus the error and hang-up poll always reports), if it can
 * change. Queues are notified with POLLIN and POLLOUT, which stand for the *NORM names too.
 */
function watchOf(d: FileDescription, events: number): Wait | undefined {
  if (!d.queue) return undefined;
  const mask = events | (events & POLLRDNORM ? POLLIN : 0) | (events & POLLWRNORM ? POLLOUT : 0);
  return [d.queue, mask | POLLERR | POLLHUP];
}

/**
 * select, pselect6 and ppoll write the time left back to their timeout (a timeval for
 * select, in µs), on success and on failure alike; a write that faults is ignored, as Linux
 * ignores it, so a timeout in read-only memory does not turn a result into EFAULT.
 */
async function reportTimeLeft(
  t: Task,
  at: number,
  deadline: bigint | undefined,
  micro: boolean,
  waiting: Promise<number>,
): Promise<number> {
  const writeBack = (): void => {
    if (at === 0 || deadline === undefined || t.exitStatus !== undefined) return;
    const now = process.hrtime.bigint();
    const left = deadline > now ? deadline - now : 0n;
    const b = Buffer.alloc(16);
    b.writeBigInt64LE(left / NS, 0);
    b.writeBigInt64LE(micro ? (left % NS) / 1000n : left % NS, 8);
    try {
      t.mm.write(at, b);
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
    }
  };
  let ready: number;
  try {
    ready = await waiting;
  } catch (e) {
    writeBack();
    throw e;
  }
  writeBack();
  return ready;
}

/**
 * Wait until `check` finds something ready or the deadline passes. `check` returns the count
 * of ready descriptors and the waits to block on; deadline undefined = wait forever. An
 * interrupted wait fails with EINTR.
 */
async function waitReady(
  t: Task,
  deadlineNs: bigint | undefined,
  check: () => { ready: number; watch: Wait[] },
): Promise<number> {
  for (;;) {
    const { ready, watch } = check();
    if (ready > 0) return ready;
    const r = await block(t, watch, deadlineNs, "poll");
    if (r === "interrupted") fail("EINTR");
    // At the deadline Linux looks once more and reports what is ready by then.
    if (r === "timeout") return check().ready;
  }
}

function deadlineFromMs(ms: number): bigint | undefined {
  return ms < 0 ? undefined : process.hrtime.bigint() + BigInt(ms) * 1_000_000n;
}

function deadlineFromTimespec(t: Task, at: number): bigint | undefined {
  if (at === 0) return undefined;
  const b = t.mm.read(at, 16);
  const sec = b.readBigInt64LE(0);
  const nsec = b.readBigInt64LE(8);
  if (sec < 0n || nsec < 0n || nsec >= NS) fail("EINVAL");
  return process.hrtime.bigint() + sec * NS + nsec;
}

async function doPoll(t: Task, at: number, nfds: number, deadline: bigint | undefined): Promise<number> {
  if (nfds > t.fds.limit) fail("EINVAL");
  const raw = t.mm.read(at, nfds * POLLFD_SIZE);
  const entries = Array.from({ length: nfds }, (_, i) => ({
    fd: raw.readInt32LE(i * POLLFD_SIZE),
    events: raw.readUInt16LE(i * POLLFD_SIZE + 4),
    revents: 0,
  }));
  const ready = await waitReady(t, deadline, () => {
    let n = 0;
    const watch: Wait[] = [];
    for (const e of entries) {
      e.revents = 0;
      if (e.fd < 0) continue;
      if (!t.fds.has(e.fd)) {
        e.revents = POLLNVAL;
      } else {
        const d = t.fds.get(e.fd);
        // POLLERR, POLLHUP and POLLNVAL are reported whether asked for or not.
        e.revents = readiness(d) & (e.events | POLLERR | POLLHUP);
        const w = watchOf(d, e.events);
        if (w) watch.push(w);
      }
      if (e.revents) n++;
    }
    return { ready: n, watch };
  });
  for (const [i, e] of entries.entries()) raw.writeUInt16LE(e.revents, i * POLLFD_SIZE + 6);
  t.mm.write(at, raw);
  return ready;
}

export const poll: Handler = (t, a) => doPoll(t, addr(a[0]), uint(a[1]), deadlineFromMs(int(a[2])));

export const ppoll: Handler = (t, a) => {
  // The signal mask argument matters only once signals are delivered to handlers.
  if (a[3] !== 0n && long(a[4]) !== 8) fail("EINVAL");
  const deadline = deadlineFromTimespec(t, addr(a[2]));
  return reportTimeLeft(t, addr(a[2]), deadline, false, doPoll(t, addr(a[0]), uint(a[1]), deadline));
};

/** select's three fd_sets: bitmaps of ceil(nfds/64) longs; null sets are skipped. */
async function doSelect(
  t: Task,
  nfds: number,
  sets: [number, number, number],
  deadline: bigint | undefined,
): Promise<number> {
  if (nfds < 0 || nfds > FD_SETSIZE) fail("EINVAL");
  const bytes = Math.ceil(nfds / 64) * 8;
  const inSets = sets.map((p) => (p === 0 || bytes === 0 ? undefined : t.mm.read(p, bytes)));
  const wanted = [POLLIN | POLLHUP | POLLERR, POLLOUT | POLLERR, POLLPRI];
  const fds: number[] = [];
  for (let fd = 0; fd < nfds; fd++) {
    if (inSets.some((s) => s && (s[fd >> 3]! >> (fd & 7)) & 1)) {
      if (!t.fds.has(fd)) fail("EBADF");
      fds.push(fd);
    }
  }
  const outSets = inSets.map((s) => (s ? Buffer.alloc(s.length) : undefined));
  const ready = await waitReady(t, deadline, () => {
    let n = 0;
    for (const o of outSets) o?.fill(0);
    const watch: Wait[] = [];
    for (const fd of fds) {
      const d = t.fds.get(fd);
      const r = readiness(d);
      let events = 0;
      for (let k = 0; k < 3; k++) {
        const s = inSets[k];
        if (s && (s[fd >> 3]! >> (fd & 7)) & 1) {
          events |= wanted[k]!;
          if (r & wanted[k]!) {
            outSets[k]![fd >> 3]! |= 1 << (fd & 7);
            n++;
          }
        }
      }
      const w = watchOf(d, events);
      if (w) watch.push(w);
    }
    return { ready: n, watch };
  });
  for (let k = 0; k < 3; k++) if (outSets[k]) t.mm.write(sets[k]!, outSets[k]!);
  return ready;
}

export const select: Handler = (t, a) => {
  const tv = addr(a[4]);
  let deadline: bigint | undefined;
  if (tv !== 0) {
    const b = t.mm.read(tv, 16);
    const sec = b.readBigInt64LE(0);
    const usec = b.readBigInt64LE(8);
    // Linux folds whole seconds out of tv_usec; only a negative time is invalid.
    if (sec < 0n || usec < 0n) fail("EINVAL");
    deadline = process.hrtime.bigint() + sec * NS + usec * 1000n;
  }
  return reportTimeLeft(
    t,
    tv,
    deadline,
    true,
    doSelect(t, int(a[0]), [addr(a[1]), addr(a[2]), addr(a[3])], deadline),
  );
};

export const pselect6: Handler = (t, a) => {
  const deadline = deadlineFromTimespec(t, addr(a[4]));
  const waiting = doSelect(t, int(a[0]), [addr(a[1]), addr(a[2]), addr(a[3])], deadline);
  return reportTimeLeft(t, addr(a[4]), deadline, false, waiting);
};
