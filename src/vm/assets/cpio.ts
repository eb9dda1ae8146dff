// A writer for the cpio "newc" format, the only archive format the Linux kernel unpacks
// as an initramfs. Written here rather than by shelling out to cpio(1) so the image is
// byte-for-byte reproducible: fixed inode numbers, owner root, mtime 0.
import { MoatError } from "../../spec/errors.js";

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = "TRAILER!!!";
const MAX_FIELD = 0xffffffff;

interface Header {
  mode: number;
  nlink: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
}

export class CpioWriter {
  private readonly chunks: Buffer[] = [];
  private readonly seen = new Set<string>();
  private ino = 1;
  private length = 0;
  private finished = false;

  dir(path: string, perm = 0o755): this {
    return this.entry(path, { mode: S_IFDIR | perm, nlink: 2, size: 0, rdevMajor: 0, rdevMinor: 0 });
  }

  file(path: string, data: Buffer, perm = 0o644): this {
    return this.entry(
      path,
      { mode: S_IFREG | perm, nlink: 1, size: data.length, rdevMajor: 0, rdevMinor: 0 },
      data,
    );
  }

  symlink(path: string, target: string): this {
    if (target === "" || target.includes("\0")) {
      throw new MoatError("EINVAL", `symlink ${path} needs a non-empty target without NUL bytes`);
    }
    const data = Buffer.from(target);
    return this.entry(
      path,
      { mode: S_IFLNK | 0o777, nlink: 1, size: data.length, rdevMajor: 0, rdevMinor: 0 },
      data,
    );
  }

  charDevice(path: string, major: number, minor: number, perm = 0o600): this {
    return this.entry(path, { mode: S_IFCHR | perm, nlink: 1, size: 0, rdevMajor: major, rdevMinor: minor });
  }

  /** The archive, ending with the trailer entry. The writer cannot be used afterwards. */
  finish(): Buffer {
    this.assertOpen();
    this.push(TRAILER, { mode: 0, nlink: 1, size: 0, rdevMajor: 0, rdevMinor: 0 }, undefined, 0);
    this.finished = true;
    return Buffer.concat(this.chunks, this.length);
  }

  private entry(path: string, h: Header, data?: Buffer): this {
    this.assertOpen();
    const name = normalise(path);
    if (this.seen.has(name)) throw new MoatError("EEXIST", `initramfs entry ${name} was added twice`);
    const parent = name.includes("/") ? name.slice(0, name.lastIndexOf("/")) : "";
    // The kernel does not create missing parents while unpacking: an entry whose
    // directory came later would silently vanish from the guest.
    if (parent !== "" && !this.seen.has(parent)) {
      throw new MoatError(
        "EINVAL",
        `initramfs entry ${name} comes before its directory ${parent}; add the directory first`,
      );
    }
    this.seen.add(name);
    this.push(name, h, data, this.ino++);
    return this;
  }

  private push(name: string, h: Header, data: Buffer | undefined, ino: number): void {
    const nameBytes = Buffer.from(`${name}\0`);
    for (const [field, v] of Object.entries({ size: h.size, major: h.rdevMajor, minor: h.rdevMinor })) {
      if (!Number.isInteger(v) || v < 0 || v > MAX_FIELD) {
        throw new MoatError(
          "EINVAL",
          `initramfs entry ${name}: ${field} ${v} does not fit a cpio newc header`,
        );
      }
    }
    const fields = [
      ino,
      h.mode,
      0,
      0,
      h.nlink,
      0,
      h.size,
      0,
      0,
      h.rdevMajor,
      h.rdevMinor,
      nameBytes.length,
      0,
    ];
    const header = Buffer.from(
      `070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`,
      "latin1",
    );
    this.add(header);
    this.add(nameBytes);
    this.pad();
    if (data && data.length > 0) {
      this.add(data);
      this.pad();
    }
  }

  private add(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }

  private pad(): void {
    const n = (4 - (this.length % 4)) % 4;
    if (n > 0) this.add(Buffer.alloc(n));
  }

  private assertOpen(): void {
    if (this.finished)
      throw new MoatError("ESTATE", "the cpio archive is already finished; start a new CpioWriter");
  }
}

/** Archive names are relative ("bin/sh"), with no "." or ".." parts. */
function normalise(path: string): string {
  const parts = path.split("/").filter((p) => p !== "");
  if (parts.length === 0 || parts.some((p) => p === "." || p === "..") || path.includes("\0")) {
    throw new MoatError(
      "EINVAL",
      `initramfs path "${path}" must name a file below / without "." or ".." parts`,
    );
  }
  const name = parts.join("/");
  if (name === TRAILER)
    throw new MoatError("EINVAL", `initramfs path "${path}" is reserved by the cpio format`);
  return name;
}
