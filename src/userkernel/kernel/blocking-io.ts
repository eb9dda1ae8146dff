// Reading and writing as a blocking syscall does: a description that would have to wait (a
// pipe with no data or no room, a host stream with nothing buffered) fails with EAGAIN; then,
// unless it is O_NONBLOCK, the task blocks on the description's wait queue and tries again.
// The attempt and the block happen in one synchronous stretch (the descriptions that wait
// answer synchronously), so a notification cannot slip in between.
import { fail, KernelError } from "../errno.js";
import { type FileDescription, POLLERR, POLLHUP, POLLIN, POLLOUT } from "./fdtable.js";
import { type Blockable, block, type WaitQueue } from "./wait.js";

const O_NONBLOCK = 0o4000;

function wouldBlock(e: unknown): boolean {
  return e instanceof KernelError && e.code === "EAGAIN";
}

/** The queue to block on, when `e` says the description would wait and the caller may. */
function waitQueue(d: FileDescription, e: unknown): WaitQueue | undefined {
  return wouldBlock(e) && !(d.flags & O_NONBLOCK) ? d.queue : undefined;
}

/** read(2) on `d`: waits for data (or the end) unless O_NONBLOCK; EINTR if interrupted. */
export async function readWaiting(t: Blockable, d: FileDescription, dst: Uint8Array): Promise<number> {
  if (!d.read) return fail("EBADF");
  for (;;) {
    let q: WaitQueue | undefined;
    try {
      const r = d.read(dst);
      return r instanceof Promise ? await r : r;
    } catch (e) {
      q = waitQueue(d, e);
      if (!q) throw e;
    }
    if ((await block(t, [[q, POLLIN | POLLHUP | POLLERR]], undefined, "read")) === "interrupted")
      fail("EINTR");
  }
}

/**
 * write(2) on `d`. A blocking description with a queue (a pipe) takes all of `src`, waiting
 * for room as often as needed; the count is short only if the task is interrupted or the
 * readers go away after part of it went in. Other descriptions answer once, as they do.
 */
export async function writeWaiting(t: Blockable, d: FileDescription, src: Buffer): Promise<number> {
  if (!d.write) return fail("EBADF");
  let done = 0;
  for (;;) {
    let q: WaitQueue | undefined;
    try {
      const r = d.write(done === 0 ? src : src.subarray(done));
      done += r instanceof Promise ? await r : r;
      if (done >= src.length || !d.queue || d.flags & O_NONBLOCK) return done;
      continue;
    } catch (e) {
      q = waitQueue(d, e);
      // Bytes already written count; the error shows on the next call, as on Linux.
      if (!q && done > 0) return done;
      if (!q) throw e;
    }
    if ((await block(t, [[q, POLLOUT | POLLERR]], undefined, "write")) === "interrupted") {
      if (done > 0) return done;
      fail("EINTR");
    }
  }
}

/** An open that must wait for something (a FIFO end for its peer) waits here; EINTR if interrupted. */
export async function openWaiting(t: Blockable, d: FileDescription): Promise<void> {
  for (let w = d.openWait?.(); w; w = d.openWait?.()) {
    if ((await block(t, [w], undefined, "open")) === "interrupted") fail("EINTR");
  }
}
