import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { decompressStream } from "../../src/image/decompress.js";
import { unpackLayer } from "../../src/image/unpack.js";
import { isMoatError, MoatError } from "../../src/spec/errors.js";
import { lgetxattr, lsetxattr, mknod, S_IFCHR, S_IFIFO } from "../../src/sys/fs.js";
import {
  gzip,
  linkGroups,
  makeTar,
  type NodeInfo,
  sha256,
  snapshotTree,
  type TarEntry,
  zstd,
} from "../helpers/tar.js";

const OCI_TAR = "application/vnd.oci.image.layer.v1.tar";
const OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";

let scratch: string;
before(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), "moat-unpack-test-"));
});
after(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

let counter = 0;
/** A fresh empty directory to hold one layer directory (and nothing else). */
async function freshParent(): Promise<string> {
  const dir = path.join(scratch, `case-${counter++}`);
  await fs.mkdir(dir);
  return dir;
}

async function unpackTar(tar: Buffer, dest: string, expectedDiffId?: string, warnings?: string[]) {
  return unpackLayer({
    input: Readable.from([tar]),
    dest,
    ...(expectedDiffId ? { expectedDiffId } : {}),
    ...(warnings ? { onWarning: (m: string) => warnings.push(m) } : {}),
  });
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(isMoatError(e), `expected a MoatError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected failure with ${code}, but it succeeded`);
}

const T0 = new Date(1_500_000_000_000);
const T1 = new Date(1_400_000_000_000);

describe("unpackLayer", () => {
  it("writes files, directories, owners, modes, links, devices, fifos, xattrs and mtimes", async () => {
    const cap = Buffer.from([1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // cap_net_bind_service+ep
    const entries: TarEntry[] = [
      { name: "./", type: "directory", mode: 0o755 },
      { name: "etc/", type: "directory", mode: 0o750, uid: 10, gid: 20, mtime: T1 },
      { name: "etc/passwd", content: "root:x:0:0::/root:/bin/sh\n", mode: 0o644, mtime: T0 },
      { name: "bin/", type: "directory" },
      { name: "bin/busybox", content: "ELF...", mode: 0o755, uid: 1, gid: 2 },
      { name: "bin/su", content: "su", mode: 0o6755, uid: 5, gid: 6 },
      { name: "bin/sh", type: "symlink", linkname: "busybox", uid: 3, gid: 4 },
      { name: "bin/ls", type: "link", linkname: "bin/busybox" },
      { name: "./tmp/", type: "directory", mode: 0o1777 },
      { name: "abs", type: "symlink", linkname: "/etc/passwd" },
      { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "dev/loop0", type: "block-device", devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
      { name: "run/fifo", type: "fifo", mode: 0o620 },
      {
        name: "bin/ping",
        content: "ping",
        mode: 0o755,
        pax: {
          "SCHILY.xattr.user.note": "hello",
          "SCHILY.xattr.security.capability": cap.toString("latin1"),
          "SCHILY.xattr.security.selinux": "system_u:object_r:bin_t:s0",
        },
      },
      { name: "big-ids", content: "x", pax: { uid: "3000000", gid: "3000001" } },
      { name: "implicit/deep/file", content: "deep" },
      { name: "late/x", content: "x" },
      { name: "late/", type: "directory", mode: 0o700, uid: 7, gid: 8, mtime: T1 },
    ];
    const tar = await makeTar(entries);
    const parent = await freshParent();
    const dest = path.join(parent, "layer");
    const warnings: string[] = [];
    let progress = 0;
    const res = await unpackLayer({
      input: Readable.from([tar]),
      dest,
      expectedDiffId: sha256(tar),
      onProgress: (n) => {
        progress = n;
      },
      onWarning: (m) => warnings.push(m),
    });
    assert.equal(res.diffId, sha256(tar));
    assert.equal(res.size, tar.length);
    assert.equal(progress, tar.length);
    assert.deepEqual(await fs.readdir(parent), ["layer"]);

    const tree = await snapshotTree(dest);
    const at = (p: string): NodeInfo => {
      const n = tree.get(p);
      assert.ok(n, `${p} missing`);
      return n;
    };
    assert.deepEqual(
      [at("etc").type, at("etc").mode, at("etc").uid, at("etc").gid, at("etc").mtime],
      ["dir", 0o750, 10, 20, T1.getTime() / 1000],
    );
    assert.equal(await fs.readFile(path.join(dest, "etc/passwd"), "utf8"), "root:x:0:0::/root:/bin/sh\n");
    assert.equal(at("etc/passwd").mtime, T0.getTime() / 1000);
    assert.deepEqual([at("bin/su").mode, at("bin/su").uid, at("bin/su").gid], [0o6755, 5, 6]);
    assert.deepEqual([at("bin/busybox").mode, at("bin/busybox").uid], [0o755, 1]);
    assert.deepEqual(
      [at("bin/sh").type, at("bin/sh").target, at("bin/sh").uid, at("bin/sh").gid],
      ["symlink", "busybox", 3, 4],
    );
    assert.equal(at("abs").target, "/etc/passwd");
    assert.equal(at("bin/ls").ino, at("bin/busybox").ino, "hardlink shares the inode");
    assert.equal(at("tmp").mode, 0o1777);
    assert.deepEqual([at("dev/null").type, at("dev/null").mode], ["char", 0o666]);
    const devNull = await fs.stat("/dev/null");
    assert.equal(at("dev/null").rdev, devNull.rdev);
    assert.deepEqual([at("dev/loop0").type, at("dev/loop0").gid], ["block", 6]);
    assert.deepEqual([at("run/fifo").type, at("run/fifo").mode], ["fifo", 0o620]);
    assert.equal(lgetxattr(path.join(dest, "bin/ping"), "user.note")?.toString(), "hello");
    assert.deepEqual(lgetxattr(path.join(dest, "bin/ping"), "security.capability"), cap);
    assert.equal(lgetxattr(path.join(dest, "bin/ping"), "security.selinux"), undefined);
    assert.ok(
      warnings.some((w) => w.includes("security.*")),
      `warned about the skipped xattr: ${warnings}`,
    );
    assert.deepEqual([at("big-ids").uid, at("big-ids").gid], [3000000, 3000001]);
    assert.deepEqual([at("implicit").mode, at("implicit").uid, at("implicit/deep").type], [0o755, 0, "dir"]);
    assert.equal(await fs.readFile(path.join(dest, "implicit/deep/file"), "utf8"), "deep");
    assert.deepEqual(
      [at("late").mode, at("late").uid, at("late").gid, at("late").mtime],
      [0o700, 7, 8, T1.getTime() / 1000],
    );
    assert.equal(at("late/x").type, "file");
  });

  it("lets a later entry replace an earlier one, merging only directories, never following symlinks", async () => {
    const parent = await freshParent();
    const outside = path.join(parent, "outside");
    await fs.mkdir(outside);
    const tar = await makeTar([
      { name: "rep", content: "one" },
      { name: "rep", content: "two" },
      { name: "rd/a", content: "a" },
      { name: "rd", type: "symlink", linkname: "elsewhere" },
      { name: "sl", type: "symlink", linkname: outside },
      { name: "sl/", type: "directory", mode: 0o711 },
      { name: "sl/inside", content: "in" },
      { name: "fl", type: "symlink", linkname: path.join(outside, "target") },
      { name: "fl", content: "replaced the link, not its target" },
      { name: "md/", type: "directory", mode: 0o755 },
      { name: "md/keep", content: "k" },
      { name: "md/", type: "directory", mode: 0o700 },
      { name: "fd", content: "file" },
      { name: "fd/", type: "directory" },
    ]);
    const dest = path.join(parent, "layer");
    await unpackTar(tar, dest);
    const tree = await snapshotTree(dest);
    assert.equal(await fs.readFile(path.join(dest, "rep"), "utf8"), "two");
    assert.deepEqual(
      [tree.get("rd")?.type, tree.get("rd")?.target, tree.has("rd/a")],
      ["symlink", "elsewhere", false],
    );
    assert.deepEqual([tree.get("sl")?.type, tree.get("sl")?.mode], ["dir", 0o711]);
    assert.equal(tree.get("fl")?.type, "file");
    assert.deepEqual([tree.get("md")?.mode, tree.get("md/keep")?.type], [0o700, "file"]);
    assert.equal(tree.get("fd")?.type, "dir");
    assert.deepEqual(await fs.readdir(outside), [], "nothing was written through a symlink");
  });

  it("turns OCI whiteouts into overlayfs whiteouts and opaque directories", async () => {
    const tar = await makeTar([
      { name: "a/", type: "directory" },
      { name: "a/.wh.gone", content: "" },
      { name: ".wh.top", content: "" },
      { name: "c/", type: "directory" },
      { name: "c/.wh..wh..opq", content: "" },
      { name: "c/new", content: "n" },
      { name: "d/.wh..wh..opq", content: "" },
      { name: "e/.wh..wh.plnk", content: "" },
    ]);
    const parent = await freshParent();
    const dest = path.join(parent, "layer");
    await unpackTar(tar, dest);
    const tree = await snapshotTree(dest);
    for (const p of ["a/gone", "top"]) {
      const n = tree.get(p);
      assert.deepEqual([n?.type, n?.rdev], ["char", 0], `${p} is a 0/0 whiteout device`);
    }
    for (const p of tree.keys()) assert.ok(!path.basename(p).startsWith(".wh."), `${p} written as a file`);
    assert.equal(lgetxattr(path.join(dest, "c"), "trusted.overlay.opaque")?.toString(), "y");
    assert.equal(lgetxattr(path.join(dest, "d"), "trusted.overlay.opaque")?.toString(), "y");
    assert.equal(lgetxattr(path.join(dest, "a"), "trusted.overlay.opaque"), undefined);
    assert.equal(tree.get("c/new")?.type, "file");
  });

  it("unpacks a tar written by GNU tar exactly as GNU tar extracts it", async () => {
    const src = await freshParent();
    const long = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(70)}`;
    await fs.mkdir(path.join(src, long), { recursive: true });
    await fs.writeFile(path.join(src, long, `${"g".repeat(120)}.txt`), "long names");
    await fs.writeFile(path.join(src, "ünïcødé ✓"), "utf-8 name");
    await fs.mkdir(path.join(src, "etc"), { mode: 0o750 });
    await fs.writeFile(path.join(src, "etc/shadow"), "secret", { mode: 0o640 });
    await fs.chown(path.join(src, "etc/shadow"), 0, 42);
    await fs.writeFile(path.join(src, "suid"), "x");
    await fs.chown(path.join(src, "suid"), 1000, 1000);
    await fs.chmod(path.join(src, "suid"), 0o6711);
    await fs.writeFile(path.join(src, "big"), Buffer.alloc(1_000_000, 7));
    await fs.link(path.join(src, "big"), path.join(src, "etc/big-link"));
    await fs.symlink("../big", path.join(src, "etc/rel-link"));
    await fs.symlink("/nonexistent/abs", path.join(src, "dangling"));
    mknod(path.join(src, "null"), S_IFCHR, 0o666, 1, 3);
    mknod(path.join(src, "fifo"), S_IFIFO, 0o644);
    lsetxattr(path.join(src, "big"), "user.kind", Buffer.from("large"));
    // Binary values that are not valid UTF-8: cap_setuid and cap_setfcap set bit 7 of a byte.
    const cap = Buffer.from([1, 0, 0, 2, 0x80, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const binary = Buffer.from([0xff, 0x00, 0x80, 0xc3, 0x28, 0x0a, 0x3d]);
    lsetxattr(path.join(src, "suid"), "security.capability", cap);
    lsetxattr(path.join(src, "etc/shadow"), "user.binary", binary);
    await fs.utimes(path.join(src, "etc"), T1, T1);
    await fs.chmod(src, 0o711);

    const xattrFlags = ["--xattrs", "--xattrs-include=*"];
    const tar = execFileSync(
      "tar",
      [...xattrFlags, "--format=posix", "--numeric-owner", "-C", src, "-cf", "-", "."],
      {
        maxBuffer: 1 << 28,
      },
    );
    const parent = await freshParent();
    const dest = path.join(parent, "layer");
    const res = await unpackTar(tar, dest, sha256(tar));
    assert.equal(res.size, tar.length);
    const ref = path.join(parent, "ref");
    await fs.mkdir(ref);
    execFileSync("tar", [...xattrFlags, "--numeric-owner", "-xpf", "-", "-C", ref], { input: tar });
    const ours = linkGroups(await snapshotTree(dest));
    const theirs = linkGroups(await snapshotTree(ref));
    assert.deepEqual(ours, theirs);
    assert.equal(ours.get("suid")?.mode, 0o6711);
    assert.deepEqual(lgetxattr(path.join(dest, "suid"), "security.capability"), cap);
    assert.deepEqual(lgetxattr(path.join(dest, "etc/shadow"), "user.binary"), binary);
    assert.equal(ours.get("etc/big-link")?.group, ours.get("big")?.group ?? "big");
    assert.ok(ours.size > 10);
  });

  it("fails with EDIGEST on a wrong diffID and leaves no layer and no temp dir", async () => {
    const tar = await makeTar([{ name: "f", content: "data" }]);
    const parent = await freshParent();
    await rejectsWith(unpackTar(tar, path.join(parent, "layer"), `sha256:${"0".repeat(64)}`), "EDIGEST");
    assert.deepEqual(await fs.readdir(parent), []);
  });

  it("refuses to unpack over an existing directory", async () => {
    const parent = await freshParent();
    await fs.mkdir(path.join(parent, "layer"));
    await rejectsWith(unpackTar(await makeTar([{ name: "f" }]), path.join(parent, "layer")), "EEXIST");
    assert.deepEqual(await fs.readdir(path.join(parent, "layer")), []);
  });

  it("unpacks gzip, docker gzip and zstd layers to the same tree and diffID", async () => {
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    const tar = await makeTar([
      { name: "dir/", type: "directory" },
      { name: "dir/big", content: big },
      { name: "dir/small", content: "small" },
    ]);
    const trees: Array<Map<string, NodeInfo>> = [];
    for (const [mediaType, blob] of [
      [OCI_TAR, tar],
      [OCI_GZIP, gzip(tar)],
      [DOCKER_GZIP, gzip(tar)],
      [OCI_ZSTD, zstd(tar)],
    ] as const) {
      const parent = await freshParent();
      const dest = path.join(parent, "layer");
      // Small chunks exercise decoders resuming mid-frame.
      const chunks: Buffer[] = [];
      for (let i = 0; i < blob.length; i += 4096) chunks.push(blob.subarray(i, i + 4096));
      const res = await unpackLayer({
        input: decompressStream(mediaType, Readable.from(chunks)),
        dest,
        expectedDiffId: sha256(tar),
      });
      assert.equal(res.diffId, sha256(tar), mediaType);
      const content = await fs.readFile(path.join(dest, "dir/big"));
      assert.ok(content.equals(big), `${mediaType}: content intact`);
      const tree = await snapshotTree(dest);
      for (const n of tree.values()) n.ino = 0;
      tree.delete("."); // no tar entry for the root: its mtime is when it was unpacked
      trees.push(tree);
    }
    for (const t of trees.slice(1)) assert.deepEqual(t, trees[0]);
  });

  it("fails cleanly with EIO on truncated or corrupt data", async () => {
    const payload = Buffer.alloc(100_000, 1);
    const tar = await makeTar([
      { name: "a", content: payload },
      { name: "b", content: "b" },
    ]);
    const gz = gzip(tar);
    const zs = zstd(tar);
    const cases: Array<[string, string, Buffer]> = [
      ["truncated gzip", OCI_GZIP, gz.subarray(0, Math.floor(gz.length / 2))],
      ["gzip missing its trailer", OCI_GZIP, gz.subarray(0, gz.length - 4)],
      ["not gzip at all", OCI_GZIP, tar],
      ["truncated zstd", OCI_ZSTD, zs.subarray(0, zs.length - 10)],
      ["tar cut inside a file", OCI_TAR, tar.subarray(0, 5000)],
      ["garbage", OCI_TAR, Buffer.alloc(2048, 0x41)],
    ];
    for (const [what, mediaType, blob] of cases) {
      const parent = await freshParent();
      const err = await rejectsWith(
        unpackLayer({
          input: decompressStream(mediaType, Readable.from([blob])),
          dest: path.join(parent, "layer"),
        }),
        "EIO",
      );
      assert.match(err.message, /corrupt|truncated/, what);
      assert.deepEqual(await fs.readdir(parent), [], `${what}: nothing left behind`);
    }
  });

  it("passes the input's own failure through and cleans up", async () => {
    const tar = await makeTar([{ name: "a", content: Buffer.alloc(50_000, 2) }]);
    const failing = new Readable({
      read() {
        this.push(tar.subarray(0, 2048));
        this.destroy(new MoatError("EDIGEST", "blob digest mismatch"));
      },
    });
    let parent = await freshParent();
    const err = await rejectsWith(
      unpackLayer({ input: failing, dest: path.join(parent, "layer") }),
      "EDIGEST",
    );
    assert.equal(err.message, "blob digest mismatch");
    assert.deepEqual(await fs.readdir(parent), []);

    // A blob that cannot even be opened fails before the first read: no crash, a clear error.
    parent = await freshParent();
    const missing = createReadStream(path.join(parent, "no-such-blob"));
    const err2 = await rejectsWith(
      unpackLayer({ input: decompressStream(OCI_GZIP, missing), dest: path.join(parent, "layer") }),
      "EIO",
    );
    assert.match(err2.message, /ENOENT/);
    assert.deepEqual(await fs.readdir(parent), []);
  });

  it("refuses sparse files (GNU and PAX forms) with ENOTSUP instead of writing them wrong", async () => {
    const src = await freshParent();
    const fh = await fs.open(path.join(src, "sparse"), "w");
    await fh.write("start");
    await fh.write("end", 4 * 1024 * 1024);
    await fh.close();
    for (const format of ["gnu", "posix"]) {
      const tar = execFileSync("tar", [`--format=${format}`, "--sparse", "-C", src, "-cf", "-", "sparse"]);
      const parent = await freshParent();
      const err = await rejectsWith(unpackTar(tar, path.join(parent, "layer")), "ENOTSUP");
      assert.match(err.message, /sparse|tar type/, format);
      assert.deepEqual(await fs.readdir(parent), [], `${format}: nothing left behind`);
    }
  });

  it("refuses an unknown media type with ENOTSUP", () => {
    assert.throws(
      () => decompressStream("application/vnd.oci.image.layer.v1.tar+bzip2", Readable.from([])),
      (e: unknown) => isMoatError(e, "ENOTSUP"),
    );
  });
});

describe("unpackLayer with hostile entries", () => {
  async function fileHash(p: string): Promise<string> {
    return createHash("sha256")
      .update(await fs.readFile(p))
      .digest("hex");
  }

  // Each case must fail with EUNSAFE and leave the parent exactly as it was: only "outside"
  // (a sentinel tree a broken unpacker would write into or link to) and nothing else.
  async function expectRefused(what: string, build: (outside: string) => TarEntry[]): Promise<void> {
    const parent = await freshParent();
    const outside = path.join(parent, "outside");
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, "keep"), "sentinel");
    const beforeTree = await snapshotTree(parent);
    const passwd = await fileHash("/etc/passwd");
    const tar = await makeTar(build(outside));
    const err = await rejectsWith(unpackTar(tar, path.join(parent, "layer")), "EUNSAFE");
    assert.match(err.message, /layer entry/, what);
    assert.match(err.message, /unsafe/, what);
    // The parent's own mtime moves (the temp dir came and went); everything in it must not.
    const afterTree = await snapshotTree(parent);
    afterTree.delete(".");
    beforeTree.delete(".");
    assert.deepEqual(afterTree, beforeTree, `${what}: the parent tree is unchanged`);
    assert.equal(await fileHash("/etc/passwd"), passwd, `${what}: /etc/passwd untouched`);
    for (const p of ["/escape", "/x", "/etc/abs"]) {
      await assert.rejects(fs.lstat(p), `${what}: ${p} must not exist`);
    }
  }

  const cases: Array<[string, (outside: string) => TarEntry[]]> = [
    ["parent escape", () => [{ name: "../escape", content: "x" }]],
    ["absolute name", () => [{ name: "/etc/abs", content: "x" }]],
    ["dotdot in the middle", () => [{ name: "a/../../x", content: "x" }]],
    [
      "write through a symlink to /",
      () => [
        { name: "evil", type: "symlink", linkname: "/" },
        { name: "evil/etc/passwd", content: "owned::0:0::/:/bin/sh\n" },
      ],
    ],
    [
      "write through a relative symlink",
      () => [
        { name: "evil", type: "symlink", linkname: "../../.." },
        { name: "evil/x", content: "x" },
      ],
    ],
    [
      "write through a symlink to the sentinel",
      (outside) => [
        { name: "evil", type: "symlink", linkname: outside },
        { name: "evil/keep", content: "overwritten" },
      ],
    ],
    [
      "directory through a nested symlink",
      (outside) => [
        { name: "a/b/", type: "directory" },
        { name: "a/b/c", type: "symlink", linkname: outside },
        { name: "a/b/c/d/", type: "directory" },
      ],
    ],
    ["hardlink out of the layer", () => [{ name: "h", type: "link", linkname: "../../etc/passwd" }]],
    ["absolute hardlink", () => [{ name: "h", type: "link", linkname: "/etc/passwd" }]],
    [
      "hardlink through a symlink",
      (outside) => [
        { name: "s", type: "symlink", linkname: outside },
        { name: "h", type: "link", linkname: "s/keep" },
      ],
    ],
    ["hardlink to a missing entry", () => [{ name: "h", type: "link", linkname: "nothing" }]],
    [
      "hardlink to a directory",
      () => [
        { name: "d/", type: "directory" },
        { name: "h", type: "link", linkname: "d" },
      ],
    ],
    ["name with a NUL byte", () => [{ name: "ab", content: "x", pax: { path: "a\0b" } }]],
    ["whiteout of ..", () => [{ name: "a/.wh..", content: "" }]],
    ["file as the layer root", () => [{ name: "./", content: "x" }]],
    [
      "forged overlay xattr",
      () => [
        { name: "d/", type: "directory", pax: { "SCHILY.xattr.trusted.overlay.redirect": "/elsewhere" } },
      ],
    ],
    [
      "file then a child of it",
      () => [
        { name: "f", content: "x" },
        { name: "f/child", content: "y" },
      ],
    ],
  ];
  for (const [what, build] of cases) {
    it(`refuses ${what}`, () => expectRefused(what, build));
  }

  it("keeps every write inside dest for random entry lists (property)", async () => {
    // Mostly safe names over a tiny alphabet, so entries often land on each other's paths
    // (a symlink, then a write below it); now and then a hostile component.
    const component = fc.oneof(
      { arbitrary: fc.constantFrom("a", "b"), weight: 8 },
      { arbitrary: fc.constantFrom("..", ".", ""), weight: 1 },
    );
    const relPath = fc.array(component, { minLength: 1, maxLength: 3 }).map((c) => c.join("/"));
    const anyPath = fc
      .tuple(fc.integer({ min: 0, max: 9 }), relPath)
      .map(([dice, p]) => (dice === 0 ? `/${p}` : p));
    // "@" stands for the run's own parent directory (each run gets a fresh one).
    const symlinkTarget = fc.constantFrom(
      "..",
      "../outside",
      "../../@base/outside",
      "@/outside",
      "a",
      "b/a",
      ".",
    );
    const entry: fc.Arbitrary<TarEntry> = fc.oneof(
      anyPath.map((name) => ({ name, content: "f" })),
      anyPath.map((name) => ({ name, type: "directory" as const })),
      fc
        .tuple(anyPath, symlinkTarget)
        .map(([name, linkname]) => ({ name, type: "symlink" as const, linkname })),
      fc
        .tuple(anyPath, fc.oneof(anyPath, fc.constant("outside/keep"), fc.constant("../outside/keep")))
        .map(([name, linkname]) => ({ name, type: "link" as const, linkname })),
    );

    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 6 }), async (entries) => {
        const parent = await freshParent();
        try {
          const outside = path.join(parent, "outside");
          await fs.mkdir(outside);
          await fs.writeFile(path.join(outside, "keep"), "sentinel");
          const sentinel = await snapshotTree(parent);
          const sentinelIno = sentinel.get("outside/keep")!.ino;
          const concrete = entries.map((e) =>
            e.type === "symlink"
              ? { ...e, linkname: e.linkname!.replace("@base", path.basename(parent)).replace("@", parent) }
              : e,
          );
          const dest = path.join(parent, "layer");
          let ok = true;
          try {
            await unpackTar(await makeTar(concrete), dest);
          } catch (e) {
            ok = false;
            assert.ok(isMoatError(e, "EUNSAFE"), `only EUNSAFE may fail a layer here, got ${String(e)}`);
          }
          assert.deepEqual((await fs.readdir(parent)).sort(), ok ? ["layer", "outside"] : ["outside"]);
          const now = await snapshotTree(parent);
          for (const [p, info] of now) {
            if (p === "." || p === "outside" || p === "outside/keep") continue;
            assert.ok(p === "layer" || p.startsWith("layer/"), `${p} is outside dest`);
            assert.notEqual(info.ino, sentinelIno, `${p} is a hardlink to a file outside the layer`);
          }
          assert.deepEqual(now.get("outside"), sentinel.get("outside"));
          assert.deepEqual(now.get("outside/keep"), sentinel.get("outside/keep"));
        } finally {
          await fs.rm(parent, { recursive: true, force: true });
        }
      }),
      { numRuns: 100 },
    );
  });
});
