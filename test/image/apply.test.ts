import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { applyLayers, canUseOverlay, overlayMountOptions } from "../../src/image/apply.js";
import { unpackLayer } from "../../src/image/unpack.js";
import { isMoatError } from "../../src/spec/errors.js";
import { MNT_DETACH, mount, umount } from "../../src/sys/fs.js";
import { linkGroups, makeTar, type NodeInfo, snapshotTree, type TarEntry } from "../helpers/tar.js";

let scratch: string;
before(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), "moat-apply-test-"));
});
after(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

async function layer(name: string, entries: TarEntry[]): Promise<string> {
  const dest = path.join(scratch, "layers", name);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  await unpackLayer({ input: Readable.from([await makeTar(entries)]), dest });
  return dest;
}

const T1 = new Date(1_400_000_000_000);

describe("applyLayers", () => {
  it("builds the same tree as an overlay mount of the same layers", async () => {
    const sentinel = path.join(scratch, "sentinel");
    await fs.mkdir(sentinel);
    const lower = await layer("lower", [
      { name: "etc/", type: "directory", mode: 0o755, uid: 2, gid: 2 },
      { name: "etc/hosts", content: "lower hosts" },
      { name: "etc/keep", content: "keep" },
      { name: "gone", content: "gone" },
      { name: "gonedir/x", content: "x" },
      { name: "gonedir/sub/y", content: "y" },
      { name: "opq/", type: "directory", mode: 0o750, uid: 3 },
      { name: "opq/a", content: "a" },
      { name: "opq/b/", type: "directory" },
      { name: "opq/b/c", content: "c" },
      { name: "link", type: "symlink", linkname: "etc" },
      { name: "esc", type: "symlink", linkname: sentinel },
      { name: "filedir/inner", content: "inner" },
      { name: "h1", content: "hard", mode: 0o640, uid: 9 },
      { name: "h2", type: "link", linkname: "h1" },
      { name: "dir2/h3", type: "link", linkname: "h1" },
      { name: "dev/null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "dev/sda", type: "block-device", devmajor: 8, devminor: 0, mode: 0o660, gid: 6 },
      { name: "run/fifo", type: "fifo", mode: 0o600 },
      { name: "bin/su", content: "su", mode: 0o4755, uid: 0 },
      { name: "usr/share/doc", content: "doc", pax: { "SCHILY.xattr.user.note": "lower" } },
      { name: "sym-over-file", content: "file" },
      { name: "tmp/", type: "directory", mode: 0o1777 },
    ]);
    const upper = await layer("upper", [
      { name: ".wh.gone" },
      { name: ".wh.gonedir" },
      { name: "opq/", type: "directory", mode: 0o755, uid: 4 },
      { name: "opq/.wh..wh..opq" },
      { name: "opq/new", content: "new" },
      { name: "link/", type: "directory", mode: 0o700 },
      { name: "link/f", content: "f" },
      { name: "esc/", type: "directory" },
      { name: "esc/pwn", content: "must not reach the sentinel" },
      { name: "filedir", content: "now a file" },
      { name: "etc/", type: "directory", mode: 0o711, mtime: T1 },
      { name: "etc/hosts", content: "upper hosts", uid: 5, gid: 6, mode: 0o600 },
      { name: "etc/new", content: "new" },
      { name: "u1", content: "upper hard" },
      { name: "u2", type: "link", linkname: "u1" },
      { name: "sym-over-file", type: "symlink", linkname: "etc/hosts" },
      { name: "newdir/deep/file", content: "deep" },
      { name: "usr/share/doc", content: "doc2", pax: { "SCHILY.xattr.user.note": "upper" } },
      { name: "bin/sg", content: "sg", mode: 0o2755, uid: 7, gid: 8 },
    ]);
    const top = await layer("top", [
      { name: "etc/", type: "directory", mode: 0o711, mtime: T1 },
      { name: "etc/.wh.keep" },
      { name: "newdir/.wh.deep" },
      { name: "opq/", type: "directory", mode: 0o755, uid: 4 },
      { name: "opq/.wh.new" },
    ]);
    const layers = [lower, upper, top];

    const rootfs = path.join(scratch, "rootfs");
    await fs.mkdir(rootfs);
    await applyLayers(layers, rootfs);
    const copied = await snapshotTree(rootfs);

    assert.ok(
      await canUseOverlay(path.join(scratch, "probe")),
      "overlayfs works on this machine (root, ext4)",
    );
    const merged = path.join(scratch, "merged");
    const up = path.join(scratch, "ovl-upper");
    const work = path.join(scratch, "ovl-work");
    for (const d of [merged, up, work]) await fs.mkdir(d);
    mount("overlay", merged, "overlay", 0, overlayMountOptions(layers, up, work));
    let overlaid: Map<string, NodeInfo>;
    try {
      overlaid = await snapshotTree(merged);
    } finally {
      umount(merged, MNT_DETACH);
    }

    // The tree root's own attributes come from the (empty) upper dir in an overlay: compare below it.
    copied.delete(".");
    overlaid.delete(".");
    assert.deepEqual(linkGroups(copied), linkGroups(overlaid));

    // And the shared answer is the right one, not merely the same.
    const at = (p: string) => copied.get(p);
    for (const p of ["gone", "gonedir", "opq/a", "opq/b", "opq/new", "etc/keep", "newdir/deep"]) {
      assert.equal(at(p), undefined, `${p} is deleted`);
    }
    assert.deepEqual([at("opq")?.type, at("opq")?.uid, at("opq")?.mode], ["dir", 4, 0o755]);
    assert.deepEqual([at("link")?.type, at("link")?.mode, at("link/f")?.type], ["dir", 0o700, "file"]);
    assert.equal(at("esc")?.type, "dir");
    assert.deepEqual(await fs.readdir(sentinel), [], "nothing was written through the symlink");
    assert.equal(await fs.readFile(path.join(rootfs, "filedir"), "utf8"), "now a file");
    assert.equal(await fs.readFile(path.join(rootfs, "etc/hosts"), "utf8"), "upper hosts");
    assert.deepEqual([at("etc/hosts")?.uid, at("etc/hosts")?.gid, at("etc/hosts")?.mode], [5, 6, 0o600]);
    assert.deepEqual([at("etc")?.mode, at("etc")?.uid, at("etc")?.mtime], [0o711, 0, T1.getTime() / 1000]);
    assert.equal(at("h1")?.ino, at("h2")?.ino);
    assert.equal(at("h1")?.ino, at("dir2/h3")?.ino);
    assert.deepEqual([at("h1")?.mode, at("h1")?.uid], [0o640, 9]);
    assert.equal(at("u1")?.ino, at("u2")?.ino);
    assert.deepEqual([at("sym-over-file")?.type, at("sym-over-file")?.target], ["symlink", "etc/hosts"]);
    assert.deepEqual(
      [at("dev/null")?.type, at("dev/null")?.rdev],
      ["char", (await fs.stat("/dev/null")).rdev],
    );
    assert.deepEqual([at("dev/sda")?.type, at("dev/sda")?.gid], ["block", 6]);
    assert.equal(at("run/fifo")?.type, "fifo");
    assert.equal(at("bin/su")?.mode, 0o4755);
    assert.deepEqual([at("bin/sg")?.mode, at("bin/sg")?.uid, at("bin/sg")?.gid], [0o2755, 7, 8]);
    assert.equal(at("tmp")?.mode, 0o1777);
    assert.deepEqual(at("usr/share/doc")?.xattrs, { "user.note": Buffer.from("upper").toString("hex") });
    for (const [p, n] of copied) {
      assert.ok(
        !Object.keys(n.xattrs).some((x) => x.startsWith("trusted.overlay.")),
        `${p} carries overlay xattrs`,
      );
      assert.ok(!(n.type === "char" && n.rdev === 0), `${p} is a whiteout left in the rootfs`);
    }
  });

  it("applies onto an existing rootfs without following its symlinks", async () => {
    const sentinel = path.join(scratch, "sentinel2");
    await fs.mkdir(sentinel);
    await fs.writeFile(path.join(sentinel, "keep"), "keep");
    const rootfs = path.join(scratch, "rootfs2");
    await fs.mkdir(rootfs);
    await fs.symlink(sentinel, path.join(rootfs, "a"));
    await fs.symlink(sentinel, path.join(rootfs, "b"));
    await fs.symlink(path.join(sentinel, "keep"), path.join(rootfs, "c"));
    const l = await layer("over-links", [
      { name: "a/", type: "directory" },
      { name: "a/keep", content: "not the sentinel" },
      { name: ".wh.b" },
      { name: "c", content: "replaces the link" },
    ]);
    await applyLayers([l], rootfs);
    const tree = await snapshotTree(rootfs);
    assert.equal(tree.get("a")?.type, "dir");
    assert.equal(tree.has("b"), false);
    assert.equal(tree.get("c")?.type, "file");
    assert.deepEqual(await fs.readdir(sentinel), ["keep"]);
    assert.equal(await fs.readFile(path.join(sentinel, "keep"), "utf8"), "keep");
  });
});

describe("overlayMountOptions", () => {
  it("lists the layers top first", () => {
    assert.equal(
      overlayMountOptions(["/s/l1", "/s/l2", "/s/l3"], "/b/upper", "/b/work"),
      "lowerdir=/s/l3:/s/l2:/s/l1,upperdir=/b/upper,workdir=/b/work",
    );
  });
  it("refuses paths the option string cannot carry and option strings the kernel cannot take", () => {
    assert.throws(
      () => overlayMountOptions(["/s/a:b"], "/u", "/w"),
      (e) => isMoatError(e, "EINVAL"),
    );
    assert.throws(
      () => overlayMountOptions(["/s/a,b"], "/u", "/w"),
      (e) => isMoatError(e, "EINVAL"),
    );
    assert.throws(
      () => overlayMountOptions([], "/u", "/w"),
      (e) => isMoatError(e, "EINVAL"),
    );
    const many = Array.from(
      { length: 100 },
      (_, i) => `/var/lib/moat/layers/sha256/${String(i).padStart(64, "0")}`,
    );
    assert.throws(
      () => overlayMountOptions(many, "/u", "/w"),
      (e) => isMoatError(e, "ENOTSUP"),
    );
  });
});

describe("canUseOverlay", () => {
  it("probes in the scratch directory and leaves nothing behind", async () => {
    const dir = path.join(scratch, "probe-clean");
    const ok = await canUseOverlay(dir);
    assert.equal(typeof ok, "boolean");
    assert.deepEqual(await fs.readdir(dir), []);
    const mounts = await fs.readFile("/proc/self/mountinfo", "utf8");
    assert.ok(!mounts.includes(dir), "the probe mount is gone");
  });
});
