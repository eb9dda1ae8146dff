// The kernel <-> gofer wire format: one JSON object per SOCK_SEQPACKET packet, an opened
// descriptor attached with SCM_RIGHTS. The only request is "open": the gofer is a
// read-only file opener and nothing else, so the protocol stays easy to audit.
//
// Paths are byte strings (one char per byte, latin1) relative to the rootfs; "." is the root.
import type { HostStat } from "../../sys/file.js";

export interface OpenRequest {
  op: "open";
  path: string;
  /** Linux open flags; only O_RDONLY, O_PATH, O_DIRECTORY and O_NOFOLLOW are accepted. */
  flags: number;
  /**
   * false (the kernel's component walks): no symlink is followed anywhere in `path`, and a
   * trailing symlink comes back as an O_PATH descriptor of the link itself.
   * true: symlinks are followed (a trailing one unless O_NOFOLLOW), but resolved as if the
   * rootfs were "/".
   */
  follow: boolean;
}

export type Request = OpenRequest;

/** A host stat with the ns times as decimal strings (JSON has no bigint). */
export type WireStat = Omit<HostStat, "atimeNs" | "mtimeNs" | "ctimeNs"> & {
  atimeNs: string;
  mtimeNs: string;
  ctimeNs: string;
};

export type Reply = { ok: true; stat: WireStat } | { ok: false; errno: string };

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
