// Build layer tars in memory for tests, and snapshot directory trees to compare them.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import { lgetxattr, llistxattr } from "../../src/sys/fs.js";

export interface TarEntry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  content?: string | Buffer;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

/** An uncompressed tar holding `entries` in order, written by tar-stream as given (no cleaning). */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of p as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const e of entries) {
    const type = e.type ?? "file";
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === "directory" ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? new Date(1_600_000_000_000),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.devmajor !== undefined ? { devmajor: e.devmajor } : {}),
      ...(e.devminor !== undefined ? { devminor: e.devminor } : {}),
      ...(e.pax !== undefined ? { pax: e.pax } : {}),
    };
    const body = type === "file" ? Buffer.from(e.content ?? "") : Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      p.entry(header, body, (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function gzip(tar: Buffer): Buffer {
  return gzipSync(tar);
}

/** zstd compression through the `zstd` command (Debian package zstd): fzstd only decompresses. */
export function zstd(tar: Buffer): Buffer {
  return execFileSync("zstd", ["-q", "-c", "-"], { input: tar, maxBuffer: 1 << 30 });
}

export function sha256(buf: Buffer): string {
  return `sha256:${createHash("sha256").update(buf).digest("hex")}`;
}

export interface NodeInfo {
  type: "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket";
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  content?: string;
  target?: string;
  rdev?: number;
  ino: number;
  /** Extended attributes, hex values. */
  xattrs: Record<string, string>;
}

/** Every path under `root` (relative, root itself as "."), described by lstat, never followed. */
export async function snapshotTree(root: string): Promise<Map<string, NodeInfo>> {
  const out = new Map<string, NodeInfo>();
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === "." ? root : path.join(root, rel);
    const st = await fs.lstat(abs);
    const info: NodeInfo = {
      type: st.isDirectory()
        ? "dir"
        : st.isSymbolicLink()
          ? "symlink"
          : st.isCharacterDevice()
            ? "char"
            : st.isBlockDevice()
              ? "block"
              : st.isFIFO()
                ? "fifo"
                : st.isSocket()
                  ? "socket"
                  : "file",
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: Math.floor(st.mtimeMs / 1000),
      ino: st.ino,
      xattrs: {},
    };
    for (const name of llistxattr(abs).sort())
      info.xattrs[name] = lgetxattr(abs, name)?.toString("hex") ?? "";
    if (info.type === "file")
      info.content = createHash("sha256")
        .update(await fs.readFile(abs))
        .digest("hex");
    if (info.type === "symlink") info.target = await fs.readlink(abs);
    if (info.type === "char" || info.type === "block") info.rdev = st.rdev;
    out.set(rel, info);
    if (info.type === "dir") {
      for (const name of (await fs.readdir(abs)).sort()) await visit(rel === "." ? name : `${rel}/${name}`);
    }
  };
  await visit(".");
  return out;
}

/** Replace inode numbers by the first path of each hardlink group, so two trees compare. */
export function linkGroups(
  tree: Map<string, NodeInfo>,
): Map<string, Omit<NodeInfo, "ino"> & { group?: string }> {
  const first = new Map<number, string>();
  const out = new Map<string, Omit<NodeInfo, "ino"> & { group?: string }>();
  for (const [p, n] of tree) {
    const { ino, ...rest } = n;
    if (n.type === "dir") {
      out.set(p, rest);
      continue;
    }
    if (!first.has(ino)) first.set(ino, p);
    out.set(p, { ...rest, group: first.get(ino)! });
  }
  return out;
}
