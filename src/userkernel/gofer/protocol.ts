// The kernel <-> gofer wire format: one JSON object per SOCK_SEQPACKET packet, an opened
// descriptor attached with SCM_RIGHTS. The gofer serves several roots: root 0 is the
// rootfs (always read-only: the overlay above it keeps every change in memory), the others
// are the container's bind mounts in config order, read-only or read-write as the config
// says. "open" is the only request a read-only root answers; a read-write root also takes
// the few changes a volume needs (create, mkdir, symlink, link, unlink, rename, setattr).
//
// Paths are byte strings (one char per byte, latin1) relative to a root; "." is the root.
// The kernel walks paths one component at a time, so every path it sends is symlink-free:
// the gofer refuses a symlink anywhere in it, and clamps ".." at the root anyway.
import type { HostStat } from "../../sys/file.js";

/** Which root a request is for (the index of its mount; 0 or absent: the rootfs). */
interface OnRoot {
  root?: number;
}

export interface OpenRequest extends OnRoot {
  op: "open";
  path: string;
  /**
   * Linux open flags. O_RDONLY, O_PATH, O_DIRECTORY and O_NOFOLLOW anywhere; on a
   * read-write root also O_WRONLY/O_RDWR (an existing regular file) and O_CREAT|O_EXCL
   * (a new one, made with `mode` and owned by `uid`/`gid`).
   */
  flags: number;
  mode?: number;
  uid?: number;
  gid?: number;
  /**
   * false (the kernel's component walks): no symlink is followed anywhere in `path`, and a
   * trailing symlink comes back as an O_PATH descriptor of the link itself.
   * true: symlinks are followed (a trailing one unless O_NOFOLLOW), but resolved as if the
   * rootfs were "/".
   */
  follow: boolean;
}

export interface MkdirRequest extends OnRoot {
  op: "mkdir";
  path: string;
  mode: number;
  uid: number;
  gid: number;
}

export interface SymlinkRequest extends OnRoot {
  op: "symlink";
  path: string;
  target: string;
  uid: number;
  gid: number;
}

export interface LinkRequest extends OnRoot {
  op: "link";
  from: string;
  to: string;
}

export interface UnlinkRequest extends OnRoot {
  op: "unlink";
  path: string;
  /** rmdir rather than unlink. */
  dir: boolean;
}

export interface RenameRequest extends OnRoot {
  op: "rename";
  from: string;
  to: string;
  /** RENAME_NOREPLACE, RENAME_EXCHANGE. */
  flags: number;
}

/** Change what is set; times are ns as decimal strings. */
export interface SetattrRequest extends OnRoot {
  op: "setattr";
  path: string;
  mode?: number;
  uid?: number;
  gid?: number;
  atimeNs?: string;
  mtimeNs?: string;
  size?: number;
}

export type Request =
  | OpenRequest
  | MkdirRequest
  | SymlinkRequest
  | LinkRequest
  | UnlinkRequest
  | RenameRequest
  | SetattrRequest;

/** One root the gofer serves, as the kernel starts it. */
export interface RootSpec {
  /** A host path from the container's config. */
  path: string;
  writable: boolean;
}

/** A host stat with the ns times as decimal strings (JSON has no bigint). */
export type WireStat = Omit<HostStat, "atimeNs" | "mtimeNs" | "ctimeNs"> & {
  atimeNs: string;
  mtimeNs: string;
  ctimeNs: string;
};

/** An open answers with the stat of what it opened (and its descriptor); a change with the new stat, if any. */
export type Reply = { ok: true; stat?: WireStat } | { ok: false; errno: string };

/** The largest packet either side sends; paths are at most PATH_MAX. */
export const MAX_PACKET = 16384;

export function toWire(s: HostStat): WireStat {
  return { ...s, atimeNs: String(s.atimeNs), mtimeNs: String(s.mtimeNs), ctimeNs: String(s.ctimeNs) };
}

export function fromWire(w: WireStat): HostStat {
  return { ...w, atimeNs: BigInt(w.atimeNs), mtimeNs: BigInt(w.mtimeNs), ctimeNs: BigInt(w.ctimeNs) };
}

export function encode(msg: Request | Reply): Buffer {
  return Buffer.from(JSON.stringify(msg), "utf8");
}

export function decode<T>(buf: Buffer): T {
  return JSON.parse(buf.toString("utf8")) as T;
}
