// memfd_create and the seals of its files (fcntl F_ADD_SEALS/F_GET_SEALS): vfs/memfd.ts keeps
// the files and the seal rules; this layer reads the arguments and finds writable mappings.
import { fail } from "../errno.js";
import type { Task } from "../kernel/task.js";
import { PROT_WRITE } from "../mm/addrspace.js";
import { sharedSegment } from "../mm/shared-files.js";
import type { FileInode } from "../vfs/inode.js";
import { addSeals, createMemfd, getSeals, MFD_NAME_MAX } from "../vfs/memfd.js";
import { fsCall } from "./fs-common.js";
import { addr, type Handler, uint } from "./types.js";

const MFD_CLOEXEC = 0x1;
const MFD_ALLOW_SEALING = 0x2;
const MFD_HUGETLB = 0x4;
/** MFD_HUGETLB's page-size field (MFD_HUGE_MASK << MFD_HUGE_SHIFT). */
const MFD_HUGE_SIZES = 0x3f << 26;

export const memfdCreate: Handler = async (t, a) => {
  const flags = uint(a[1]);
  const allowed = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | (flags & MFD_HUGETLB ? MFD_HUGE_SIZES : 0);
  if (flags & ~allowed) fail("EINVAL");
  // The name and its NUL fit in MFD_NAME_MAX + 1 bytes.
  const name = t.mm.readCString(addr(a[0]), MFD_NAME_MAX + 1, "latin1", "EINVAL");
  if (flags & MFD_HUGETLB) fail("EINVAL", "MFD_HUGETLB: the userkernel has no huge pages");
  const { vfs, ctx } = fsCall(t);
  const f = await createMemfd(vfs.internalTmpfs(), ctx.cred, name, (flags & MFD_ALLOW_SEALING) !== 0);
  try {
    return t.fds.install(f, (flags & MFD_CLOEXEC) !== 0);
  } catch (e) {
    f.release();
    throw e;
  }
};

/** Whether any address space of the sandbox maps `inode`'s shared pages writable. */
function writableMapped(t: Task, inode: FileInode): boolean {
  const seg = sharedSegment(inode);
  if (!seg) return false;
  const spaces = new Set(t.pidns.groupList().flatMap((g) => [...g.tasks].map((x) => x.mm)));
  for (const mm of spaces)
    for (const v of mm.list())
      if (v.shared && v.prot & PROT_WRITE && v.off < seg.off + seg.len && seg.off < v.off + (v.end - v.start))
        return true;
  return false;
}

export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;

/** fcntl's seal commands on description `d`. */
export function fcntlSeals(t: Task, d: { flags: number }, cmd: number, arg: bigint): number {
  if (cmd === F_GET_SEALS) return getSeals(d);
  addSeals(d, uint(arg), (inode) => writableMapped(t, inode));
  return 0;
}
