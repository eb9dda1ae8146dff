// eventfd and eventfd2: a new EventFd (vfs/eventfd.ts) on a descriptor.
import { fail } from "../errno.js";
import { EventFd } from "../vfs/eventfd.js";
import { O_RDWR } from "../vfs/file.js";
import { O_CLOEXEC, O_NONBLOCK } from "../vfs/flags.js";
import { type Handler, uint } from "./types.js";

const EFD_SEMAPHORE = 1;

function eventfdWith(t: Parameters<Handler>[0], initval: number, flags: number): number {
  if (flags & ~(EFD_SEMAPHORE | O_CLOEXEC | O_NONBLOCK)) fail("EINVAL");
  // O_RDWR: what F_GETFL shows for an eventfd.
  const d = new EventFd(BigInt(initval), O_RDWR | (flags & O_NONBLOCK), (flags & EFD_SEMAPHORE) !== 0);
  return t.fds.install(d, (flags & O_CLOEXEC) !== 0);
}

export const eventfd: Handler = (t, a) => eventfdWith(t, uint(a[0]), 0);
export const eventfd2: Handler = (t, a) => eventfdWith(t, uint(a[0]), uint(a[1]));
