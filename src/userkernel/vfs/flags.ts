// The constants of the path-based calls: limits, the *at flags, access modes. The open
// flags are Linux's own numbers: the guest passes them in, the host's are the same.
export const PATH_MAX = 4096;
export const NAME_MAX = 255;
/** Linux's limit on symlinks followed in one lookup. */
export const MAXSYMLINKS = 40;

export {
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_TMPFILE,
  O_TRUNC,
} from "../../sys/file.js";

export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_SYMLINK_FOLLOW = 0x400;
export const AT_EACCESS = 0x200;
export const AT_EMPTY_PATH = 0x1000;

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

export const F_OK = 0;
export const X_OK = 1;
export const W_OK = 2;
export const R_OK = 4;

/** utimensat's per-time choices. */
export type TimeSpec = bigint | "now" | "omit";
