// preadv2 and pwritev2: preadv/pwritev at an offset, or readv/writev at the file position
// for offset -1, with the per-call RWF_* flags Linux knows: HIPRI (a polling hint: nothing to
// poll here), DSYNC and SYNC (the write is synced before the call returns), NOWAIT (EAGAIN
// where the call would wait) and APPEND (the write goes to the end, as O_APPEND).
import { fail } from "../errno.js";
import { type FileDescription, POLLERR, POLLHUP, POLLIN, POLLOUT } from "../kernel/fdtable.js";
import { SEEK_END } from "../vfs/file.js";
import { statOf } from "../vfs/index.js";
import { preadv, pwritev, readv, writev } from "./fs.js";
import { type Args, type Handler, int, uint } from "./types.js";

const RWF_HIPRI = 0x1;
const RWF_DSYNC = 0x2;
const RWF_SYNC = 0x4;
const RWF_NOWAIT = 0x8;
const RWF_APPEND = 0x10;

function flagsOf(v: bigint | undefined): number {
  const f = uint(v);
  if (f & ~(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND)) fail("ENOTSUP");
  return f;
}

/** The offset argument: -1 for the file position, else at least 0. */
function offsetOf(v: bigint | undefined): bigint {
  const off = BigInt.asIntN(64, v ?? 0n);
  if (off < -1n) fail("EINVAL");
  return off;
}

/** RWF_NOWAIT: a description that can make the caller wait and is not ready fails now. */
function checkNoWait(d: FileDescription, flags: number, ready: number): void {
  if (flags & RWF_NOWAIT && d.queue && d.poll && !(d.poll() & ready)) fail("EAGAIN");
}

export const preadv2: Handler = async (t, a) => {
  const flags = flagsOf(a[5]);
  const off = offsetOf(a[3]);
  const d = t.fds.get(int(a[0]));
  checkNoWait(d, flags, POLLIN | POLLHUP | POLLERR);
  const args: Args = [a[0]!, a[1]!, a[2]!, off < 0n ? 0n : off];
  return off < 0n ? readv(t, args) : preadv(t, args);
};

export const pwritev2: Handler = async (t, a) => {
  const flags = flagsOf(a[5]);
  let off = offsetOf(a[3]);
  const d = t.fds.get(int(a[0]));
  checkNoWait(d, flags, POLLOUT | POLLERR);
  if (flags & RWF_APPEND) {
    if (off < 0n) await d.seek?.(0, SEEK_END);
    else off = BigInt(statOf(d).size);
  }
  const args: Args = [a[0]!, a[1]!, a[2]!, off < 0n ? 0n : off];
  const n = await (off < 0n ? writev(t, args) : pwritev(t, args));
  if (flags & (RWF_DSYNC | RWF_SYNC)) await d.sync?.();
  return n;
};
