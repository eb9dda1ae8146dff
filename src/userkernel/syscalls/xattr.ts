// Extended attributes: no file system of the userkernel keeps any, so every call answers as
// Linux does for a file system without xattr support (EOPNOTSUPP, which is ENOTSUP), after the path or the
// descriptor has been checked as Linux checks it (ENOENT, EACCES, EBADF first). ls -l asks
// for ACLs and SELinux labels this way and takes that as "none".
import { fail } from "../errno.js";
import { AT_SYMLINK_NOFOLLOW } from "../vfs/index.js";
import { fsCall, pathArg } from "./fs-common.js";
import { type Handler, int } from "./types.js";

const AT_FDCWD = -100n;

function onPath(follow: boolean): Handler {
  return async (t, a) => {
    const { vfs, ctx } = fsCall(t);
    await vfs.stat(ctx, null, pathArg(t, a[0]), follow ? 0 : AT_SYMLINK_NOFOLLOW);
    return fail("ENOTSUP", "no extended attributes");
  };
}

const onFd: Handler = (t, a) => {
  if (BigInt(int(a[0])) === AT_FDCWD) fail("EBADF");
  t.fds.get(int(a[0]));
  return fail("ENOTSUP", "no extended attributes");
};

export const pathXattr = onPath(true);
export const lpathXattr = onPath(false);
export const fdXattr = onFd;
