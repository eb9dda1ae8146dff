// Writes the entries of one layer tar into a fresh layer directory, one at a time, in tar
// order. Every name is untrusted: it is split into components (unpack-path.ts), each parent
// is checked with lstat to be a real directory inside the root (never a symlink), and the
// final component is created fresh (an existing one is removed first, never followed).
// Nothing but this writer touches the directory while it works, so a check stays true
// until the write that relies on it. The file calls are synchronous on purpose: a threadpool
// round trip per call made unpacking two to three times slower (measured on a 1500-file layer).
import * as fs from "node:fs";
import { constants, type Stats } from "node:fs";
import { MoatError } from "../spec/errors.js";
import { lsetxattr, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from "../sys/fs.js";
import { OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, splitEntryName, WHITEOUT_PREFIX } from "./unpack-path.js";
import { paxXattrs } from "./unpack-xattrs.js";

/** The parts of a tar header the writer uses (tar-stream's header plus its PAX records). */
export interface EntryHeader {
  name: string;
  type?: string | null;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  linkname?: string | null;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string> | null;
}

interface Meta {
  uid: number;
  gid: number;
  mode: number;
  mtime: number;
  xattrs: Array<[string, Buffer]>;
}

export class LayerTree {
  // Relative paths ("" is the root) known to be real directories right now. Saves one lstat
  // per parent per entry; forget() drops a path and everything under it when it is removed.
  private readonly dirs = new Set<string>([""]);
  private readonly dirTimes = new Map<string, number>();
  private readonly skipped = new Map<string, number>();

  constructor(
    readonly root: string,
    private readonly warn?: (message: string) => void,
  ) {}

  /** Write one entry; `body` is its content stream and is always read to the end. */
  async add(h: EntryHeader, body: AsyncIterable<Buffer>, rawPax?: Map<string, Buffer>): Promise<void> {
    const name = h.name;
    const split = splitEntryName(name);
    if (!split.ok) return this.refuse(name, split.reason);
    const parts = split.parts;
    const base = parts.at(-1);
    // tar-stream reports typeflags it does not know (GNU sparse, multi-volume...) as null.
    const type = h.type === undefined ? "file" : (h.type ?? "unknown");

    if (Object.keys(h.pax ?? {}).some((k) => k.startsWith("GNU.sparse."))) {
      // PAX sparse files look like plain files whose content is a sparse map: refuse them
      // rather than write that map as the file.
      throw unsupported(name, "GNU sparse file");
    }
    if (base?.startsWith(WHITEOUT_PREFIX)) {
      await drain(body);
      return this.whiteout(name, parts);
    }
    if (parts.length === 0) {
      if (type !== "directory") return this.refuse(name, "would replace the layer root with a non-directory");
      await drain(body);
      return this.applyMeta("", this.meta(h, rawPax), "dir");
    }

    await this.ensureParents(name, parts);
    const rel = parts.join("/");
    const abs = this.abs(rel);
    switch (type) {
      case "file":
      case "contiguous-file": {
        await this.clear(rel, false);
        const meta = this.meta(h, rawPax);
        const fd = fs.openSync(
          abs,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o600,
        );
        try {
          for await (const chunk of body) writeAll(fd, chunk);
        } finally {
          fs.closeSync(fd);
        }
        return this.applyMeta(rel, meta, "other");
      }
      case "directory": {
        const meta = this.meta(h, rawPax);
        await drain(body);
        if ((await this.clear(rel, true)) !== "kept") {
          fs.mkdirSync(abs, { mode: 0o700 });
          this.dirs.add(rel);
        }
        return this.applyMeta(rel, meta, "dir");
      }
      case "symlink": {
        await drain(body);
        const target = h.linkname ?? "";
        if (target === "") return this.refuse(name, "is a symlink with an empty target");
        if (target.includes("\0")) return this.refuse(name, "is a symlink whose target contains a NUL byte");
        const meta = this.meta(h, rawPax);
        await this.clear(rel, false);
        // The target is stored as text and never followed by the unpacker: where it points
        // only matters inside the container, whose root it is resolved against.
        fs.symlinkSync(target, abs);
        return this.applyMeta(rel, meta, "symlink");
      }
      case "link":
        await drain(body);
        return this.hardlink(h, parts);
      case "character-device":
      case "block-device":
      case "fifo": {
        await drain(body);
        const meta = this.meta(h, rawPax);
        await this.clear(rel, false);
        const kind = type === "fifo" ? S_IFIFO : type === "block-device" ? S_IFBLK : S_IFCHR;
        mknod(abs, kind, 0o600, h.devmajor ?? 0, h.devminor ?? 0);
        return this.applyMeta(rel, meta, "other");
      }
      default:
        await drain(body);
        throw unsupported(name, `tar type ${JSON.stringify(type)}`);
    }
  }

  /** Give directories the mtimes their entries asked for (writing their children changed them). */
  async finish(): Promise<void> {
    for (const [rel, mtime] of this.dirTimes) fs.lutimesSync(this.abs(rel), mtime, mtime);
    for (const [what, count] of this.skipped) {
      this.warn?.(`layer: ${count} entr${count === 1 ? "y" : "ies"}: ${what}`);
    }
  }

  private abs(rel: string): string {
    return rel === "" ? this.root : `${this.root}/${rel}`;
  }

  private async whiteout(name: string, parts: string[]): Promise<void> {
    const base = parts.at(-1)!;
    const dirParts = parts.slice(0, -1);
    if (base === OPAQUE_MARKER) {
      await this.ensureParents(name, parts);
      lsetxattr(this.abs(dirParts.join("/")), OVERLAY_OPAQUE_XATTR, Buffer.from("y"));
      return;
    }
    // Other ".wh..wh." names are aufs bookkeeping (hardlink dirs), not whiteouts of a path.
    if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) {
      this.note(`aufs metadata (${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}*) ignored`);
      return;
    }
    const victim = base.slice(WHITEOUT_PREFIX.length);
    if (victim === "" || victim === "." || victim === "..") {
      return this.refuse(name, "is a whiteout of an invalid name");
    }
    await this.ensureParents(name, parts);
    const rel = [...dirParts, victim].join("/");
    await this.clear(rel, false);
    // overlayfs reads a 0/0 character device as "deleted in this layer".
    mknod(this.abs(rel), S_IFCHR, 0, 0, 0);
  }

  private async hardlink(h: EntryHeader, parts: string[]): Promise<void> {
    const name = h.name;
    const target = h.linkname ?? "";
    const split = splitEntryName(target);
    if (!split.ok)
      return this.refuse(name, `is a hardlink whose target ${JSON.stringify(target)} ${split.reason}`);
    const tparts = split.parts;
    const trel = tparts.join("/");
    const rel = parts.join("/");
    if (tparts.length === 0) return this.refuse(name, "is a hardlink to the layer root");
    for (let i = 1; i < tparts.length; i++) {
      const dir = tparts.slice(0, i).join("/");
      if (this.dirs.has(dir)) continue;
      const st = lstatOrNull(this.abs(dir));
      if (st === null)
        return this.refuse(name, `is a hardlink to ${JSON.stringify(target)}, which does not exist`);
      if (st.isSymbolicLink()) {
        return this.refuse(
          name,
          `is a hardlink whose target ${JSON.stringify(target)} passes through the symlink ${dir}`,
        );
      }
      if (!st.isDirectory()) {
        return this.refuse(
          name,
          `is a hardlink whose target ${JSON.stringify(target)} passes through the non-directory ${dir}`,
        );
      }
      this.dirs.add(dir);
    }
    const tst = lstatOrNull(this.abs(trel));
    if (tst === null) {
      return this.refuse(
        name,
        `is a hardlink to ${JSON.stringify(target)}, which is not an earlier entry of this layer`,
      );
    }
    if (tst.isDirectory())
      return this.refuse(name, `is a hardlink to the directory ${JSON.stringify(target)}`);
    if (trel === rel) return this.refuse(name, "is a hardlink to itself");
    if (trel.startsWith(`${rel}/`))
      return this.refuse(name, "is a hardlink to a path inside the entry it replaces");
    await this.ensureParents(name, parts);
    await this.clear(rel, false);
    // link(2) does not follow a symlink target: a link to a symlink is another name for the symlink.
    fs.linkSync(this.abs(trel), this.abs(rel));
  }

  /** Create missing parents (0755 root), refusing a parent that is a symlink or not a directory. */
  private async ensureParents(name: string, parts: string[]): Promise<void> {
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (this.dirs.has(dir)) continue;
      const abs = this.abs(dir);
      const st = lstatOrNull(abs);
      if (st === null) {
        fs.mkdirSync(abs, { mode: 0o755 });
        fs.chmodSync(abs, 0o755); // independent of the umask
      } else if (st.isSymbolicLink()) {
        return this.refuse(
          name,
          `passes through the symlink ${dir} (writing through it could escape the layer)`,
        );
      } else if (!st.isDirectory()) {
        return this.refuse(name, `passes through ${dir}, which is not a directory`);
      }
      this.dirs.add(dir);
    }
  }

  /**
   * Make room for a new entry at `rel`: an existing directory is kept when the new entry is a
   * directory too (tar merges them), anything else is removed (a symlink is removed, never followed).
   */
  private async clear(rel: string, keepDir: boolean): Promise<"absent" | "kept" | "removed"> {
    const abs = this.abs(rel);
    const st = lstatOrNull(abs);
    if (st === null) return "absent";
    if (st.isDirectory()) {
      if (keepDir) return "kept";
      fs.rmSync(abs, { recursive: true, force: true });
      this.forget(rel);
    } else {
      fs.unlinkSync(abs);
    }
    return "removed";
  }

  private forget(rel: string): void {
    const prefix = `${rel}/`;
    for (const d of this.dirs) if (d === rel || d.startsWith(prefix)) this.dirs.delete(d);
    for (const d of this.dirTimes.keys()) if (d === rel || d.startsWith(prefix)) this.dirTimes.delete(d);
  }

  private meta(h: EntryHeader, rawPax?: Map<string, Buffer>): Meta {
    const pax = h.pax ?? {};
    const id = (key: "uid" | "gid", fallback: number | undefined): number => {
      const v = pax[key] ?? fallback ?? 0;
      const n = typeof v === "number" ? v : Number(v);
      if (!Number.isSafeInteger(n) || n < 0 || n > 0xfffffffe) {
        return this.refuse(h.name, `has an invalid ${key} ${JSON.stringify(v)}`);
      }
      return n;
    };
    let mtime = (h.mtime?.getTime() ?? 0) / 1000;
    if (pax.mtime !== undefined) {
      const m = Number(pax.mtime);
      if (!Number.isFinite(m))
        return this.refuse(h.name, `has an invalid PAX mtime ${JSON.stringify(pax.mtime)}`);
      mtime = m;
    }
    return {
      uid: id("uid", h.uid),
      gid: id("gid", h.gid),
      mode: (h.mode ?? 0o644) & 0o7777,
      mtime,
      xattrs: this.xattrs(h.name, pax, rawPax),
    };
  }

  private xattrs(
    name: string,
    pax: Record<string, string>,
    rawPax?: Map<string, Buffer>,
  ): Array<[string, Buffer]> {
    const r = paxXattrs(pax, rawPax);
    if (!r.ok) return this.refuse(name, r.reason);
    for (const n of r.notes) this.note(n);
    return r.xattrs;
  }

  // Owner first, then mode (chown clears setuid/setgid), then xattrs (chown also clears
  // security.capability), then times (everything before changes them).
  private async applyMeta(rel: string, meta: Meta, kind: "dir" | "symlink" | "other"): Promise<void> {
    const abs = this.abs(rel);
    fs.lchownSync(abs, meta.uid, meta.gid);
    if (kind !== "symlink") fs.chmodSync(abs, meta.mode);
    for (const [attr, value] of meta.xattrs) {
      try {
        lsetxattr(abs, attr, value);
      } catch (e) {
        const code = (e as { code?: string }).code;
        // user.* cannot be set on symlinks and devices; some filesystems lack xattrs.
        if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw e;
        this.note(`xattr ${attr} could not be set (${code})`);
      }
    }
    if (kind === "dir") this.dirTimes.set(rel, meta.mtime);
    else fs.lutimesSync(abs, meta.mtime, meta.mtime);
  }

  private note(what: string): void {
    this.skipped.set(what, (this.skipped.get(what) ?? 0) + 1);
  }

  private refuse(name: string, reason: string): never {
    throw new MoatError(
      "EUNSAFE",
      `layer entry ${JSON.stringify(name)} ${reason}: the image is malformed or unsafe and moat refuses to unpack it; do not run this image (ask its publisher to rebuild it)`,
    );
  }
}

function unsupported(name: string, what: string): MoatError {
  return new MoatError(
    "ENOTSUP",
    `layer entry ${JSON.stringify(name)} is a ${what}, which moat cannot unpack (it handles files, directories, links, devices and fifos): rebuild the image with a standard tar writer`,
  );
}

function lstatOrNull(p: string): Stats | null {
  return fs.lstatSync(p, { throwIfNoEntry: false }) ?? null;
}

function writeAll(fd: number, chunk: Buffer): void {
  let off = 0;
  while (off < chunk.length) off += fs.writeSync(fd, chunk, off);
}

async function drain(body: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of body) {
    // discard
  }
}
