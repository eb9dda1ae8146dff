// The VFS over a real gofer and a real rootfs on disk: the overlay, tmpfs, devices, proc,
// pipes, the path walk's errors, and the hostile rootfs seen through the kernel's own walk.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { decodeStat } from "../../src/sys/file.js";
import { KernelError } from "../../src/userkernel/errno.js";
import { GoferClient } from "../../src/userkernel/gofer/client.js";
import { openWaiting, readWaiting, writeWaiting } from "../../src/userkernel/kernel/blocking-io.js";
import { FdTable, type FileDescription } from "../../src/userkernel/kernel/fdtable.js";
import { StreamOutput } from "../../src/userkernel/kernel/hoststream.js";
import type { Blockable } from "../../src/userkernel/kernel/wait.js";
import {
  AT_EMPTY_PATH,
  AT_REMOVEDIR,
  AT_SYMLINK_NOFOLLOW,
  type Ctx,
  DirInode,
  decodeDirents,
  dirfdInode,
  encodeStat,
  encodeStatfs,
  encodeStatx,
  inodeOf,
  O_APPEND,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_TRUNC,
  type PipeReader,
  PipeWriter,
  type ProcessSource,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  statOf,
  Vfs,
} from "../../src/userkernel/vfs/index.js";
import { buildRootfs, HOSTILE_PATHS, type Planted, removeRootfs } from "./vfs-rootfs.js";

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;

/** What a kill does to a task sleeping in a block (Task.interrupt()). */
const interrupt = (t: Blockable): void => t.blockedOn?.interrupt();

async function errno(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
    return "ok";
  } catch (e) {
    if (e instanceof KernelError) return e.code;
    throw e;
  }
}

async function readAll(d: FileDescription): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (;;) {
    const b = Buffer.alloc(4096);
    const n = await d.read!(b);
    if (n === 0) return Buffer.concat(chunks);
    chunks.push(b.subarray(0, n));
  }
}

async function listDir(
  d: FileDescription,
  bufSize = 4096,
): Promise<Array<{ name: string; type: number; ino: number; off: number }>> {
  const out = [];
  const buf = Buffer.alloc(bufSize);
  for (;;) {
    const n = await d.getdents64!(buf);
    if (n === 0) return out;
    out.push(...decodeDirents(buf, n));
  }
}

describe("vfs", () => {
  let p: Planted;
  let gofer: GoferClient;
  let vfs: Vfs;
  let ctx: Ctx;

  const read = async (path: string, c: Ctx = ctx): Promise<string> => {
    const d = await vfs.open(c, null, path, O_RDONLY);
    try {
      return (await readAll(d)).toString("latin1");
    } finally {
      d.release?.();
    }
  };
  const write = async (path: string, data: string, flags = O_WRONLY | O_CREAT | O_TRUNC): Promise<void> => {
    const d = await vfs.open(ctx, null, path, flags, 0o644);
    try {
      await d.write!(Buffer.from(data, "latin1"));
    } finally {
      d.release?.();
    }
  };
  const names = async (path: string): Promise<string[]> => {
    const d = await vfs.open(ctx, null, path, O_RDONLY | O_DIRECTORY);
    try {
      return (await listDir(d)).map((e) => e.name).sort();
    } finally {
      d.release?.();
    }
  };

  before(async () => {
    p = buildRootfs();
    gofer = await GoferClient.start(p.root);
    vfs = await Vfs.create({ gofer });
    ctx = vfs.adminCtx(1);
  });
  after(async () => {
    await gofer?.close();
    if (p) removeRootfs(p);
  });

  it("reads files of the image", async () => {
    assert.equal(await read("/etc/hello"), "hello from the image\n");
    assert.equal(await read("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    assert.equal(await read("/bin/tool"), "#!/bin/sh\necho tool\n");
    assert.equal(await read("/data/b.txt"), "B".repeat(5000));
    const st = await vfs.stat(ctx, null, "/data/b.txt");
    const host = fs.statSync(`${p.root}/data/b.txt`, { bigint: true });
    assert.equal(st.size, 5000);
    assert.equal(st.ino, Number(host.ino));
    assert.equal(st.mtimeNs, host.mtimeNs);
    assert.equal(st.mode, Number(host.mode));
    const d = await vfs.open(ctx, null, "/data/b.txt", O_RDONLY);
    const b = Buffer.alloc(10);
    assert.equal(await d.pread!(b, 4995), 5);
    assert.equal(d.seek!(-3, 2), 4997);
    assert.equal(await d.read!(b), 3);
    d.release!();
  });

  it("lists directories with getdents64 (merged, resumable)", async () => {
    const d = await vfs.open(ctx, null, "/data", O_RDONLY | O_DIRECTORY);
    // A buffer that holds two records at a time forces resumption from d_off.
    const entries = await listDir(d, 64);
    assert.deepEqual(entries.map((e) => e.name).sort(), [".", "..", "a.txt", "b.txt", "empty", "sub"]);
    const sub = entries.find((e) => e.name === "sub")!;
    assert.equal(sub.type, 4);
    assert.equal(entries.find((e) => e.name === "a.txt")!.type, 8);
    assert.equal(sub.ino, Number(fs.statSync(`${p.root}/data/sub`).ino));
    assert.equal(entries.find((e) => e.name === ".")!.ino, (await vfs.stat(ctx, null, "/data")).ino);
    assert.equal(entries.find((e) => e.name === "..")!.ino, (await vfs.stat(ctx, null, "/")).ino);
    // Seeking to a record's d_off resumes right after it.
    const third = entries[2]!;
    d.seek!(third.off, 0);
    const rest = await listDir(d);
    assert.deepEqual(
      rest.map((e) => e.name),
      entries.slice(3).map((e) => e.name),
    );
    d.seek!(0, 0);
    assert.equal((await listDir(d)).length, 6);
    d.release!();
    // A buffer too small for even one record is EINVAL, as on Linux.
    const e = await vfs.open(ctx, null, "/data", O_RDONLY | O_DIRECTORY);
    assert.equal(await errno(() => e.getdents64!(Buffer.alloc(8))), "EINVAL");
    e.release!();
  });

  it("writes to image files go to the overlay; the host file never changes", async () => {
    const hostPath = `${p.root}/etc/passwd`;
    const before = fs.readFileSync(hostPath);
    const beforeSt = fs.statSync(hostPath, { bigint: true });
    await write("/etc/passwd", "intruder::0:0\n", O_WRONLY | O_APPEND);
    assert.equal(await read("/etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nintruder::0:0\n");
    const d = await vfs.open(ctx, null, "/etc/passwd", O_RDWR);
    await d.pwrite!(Buffer.from("ROOT"), 0);
    await d.truncate!(10);
    d.release!();
    assert.equal(await read("/etc/passwd"), "ROOT:x:0:0");
    await vfs.truncate(ctx, null, "/data/a.txt", 3);
    assert.equal(await read("/data/a.txt"), "AAA");
    await vfs.chmod(ctx, null, "/data/a.txt", 0o600);
    await vfs.chown(ctx, null, "/data/a.txt", 123, 456);
    const st = await vfs.stat(ctx, null, "/data/a.txt");
    assert.equal(st.mode & 0o7777, 0o600);
    assert.equal(st.uid, 123);
    assert.equal(st.gid, 456);
    assert.deepEqual(fs.readFileSync(hostPath), before);
    const afterSt = fs.statSync(hostPath, { bigint: true });
    assert.equal(afterSt.mtimeNs, beforeSt.mtimeNs);
    assert.equal(afterSt.ctimeNs, beforeSt.ctimeNs);
    assert.equal(fs.readFileSync(`${p.root}/data/a.txt`, "utf8"), "A".repeat(100));
    assert.equal(fs.statSync(`${p.root}/data/a.txt`).mode & 0o7777, 0o644);
    assert.equal(fs.statSync(`${p.root}/data/a.txt`).uid, 0);
  });

  it("unlink hides an image file; the host keeps it", async () => {
    await write("/etc/doomed", "x");
    assert.equal(await read("/etc/doomed"), "x");
    await vfs.unlink(ctx, null, "/etc/doomed");
    await vfs.unlink(ctx, null, "/etc/hello");
    assert.equal(await errno(vfs.open(ctx, null, "/etc/hello", O_RDONLY)), "ENOENT");
    assert.equal(await errno(vfs.stat(ctx, null, "/etc/hello")), "ENOENT");
    assert.ok(!(await names("/etc")).includes("hello"));
    assert.ok(!(await names("/etc")).includes("doomed"));
    assert.equal(fs.readFileSync(`${p.root}/etc/hello`, "utf8"), "hello from the image\n");
    // The name can be used again, for a new file.
    await write("/etc/hello", "new hello");
    assert.equal(await read("/etc/hello"), "new hello");
    assert.equal(fs.readFileSync(`${p.root}/etc/hello`, "utf8"), "hello from the image\n");
  });

  it("an open image file stays readable after unlink", async () => {
    const d = await vfs.open(ctx, null, "/data/sub/c.txt", O_RDONLY);
    await vfs.unlink(ctx, null, "/data/sub/c.txt");
    assert.equal((await readAll(d)).toString(), "c");
    assert.equal(statOf(d).nlink, 0);
    d.release!();
  });

  it("mkdir, rename and rmdir in the overlay, over image directories too", async () => {
    await vfs.mkdir(ctx, null, "/work", 0o755);
    await vfs.mkdir(ctx, null, "/work/a", 0o700);
    assert.equal(await errno(vfs.mkdir(ctx, null, "/work/a", 0o700)), "EEXIST");
    await write("/work/a/f", "data");
    await vfs.rename(ctx, null, "/work/a", null, "/work/b");
    assert.equal(await read("/work/b/f"), "data");
    assert.equal(await errno(vfs.stat(ctx, null, "/work/a")), "ENOENT");
    assert.equal(await errno(vfs.rmdir(ctx, null, "/work/b")), "ENOTEMPTY");
    await vfs.unlink(ctx, null, "/work/b/f");
    await vfs.rmdir(ctx, null, "/work/b");
    assert.deepEqual(await names("/work"), [".", ".."]);
    // An image directory moves with its (not yet looked up) contents.
    await vfs.rename(ctx, null, "/usr/bin", null, "/work/tools");
    assert.equal(await read("/work/tools/tool"), "#!/bin/sh\necho tool\n");
    assert.equal(await errno(read("/bin/tool")), "ENOENT");
    assert.equal(fs.existsSync(`${p.root}/usr/bin/tool`), true);
    // Emptying an image directory, removing it and making it again gives an opaque one.
    await vfs.unlink(ctx, null, "/data/sub/c.txt").catch(() => undefined);
    await vfs.rmdir(ctx, null, "/data/sub");
    await vfs.mkdir(ctx, null, "/data/sub", 0o755);
    assert.deepEqual(await names("/data/sub"), [".", ".."]);
    assert.equal(fs.existsSync(`${p.root}/data/sub/c.txt`), true);
    // rename replacing a file, NOREPLACE, EXCHANGE.
    await write("/work/x", "X");
    await write("/work/y", "Y");
    assert.equal(await errno(vfs.rename(ctx, null, "/work/x", null, "/work/y", RENAME_NOREPLACE)), "EEXIST");
    await vfs.rename(ctx, null, "/work/x", null, "/work/y", RENAME_EXCHANGE);
    assert.equal(await read("/work/x"), "Y");
    await vfs.rename(ctx, null, "/work/x", null, "/work/y");
    assert.equal(await read("/work/y"), "Y");
    assert.equal(await errno(vfs.stat(ctx, null, "/work/x")), "ENOENT");
    assert.equal(await errno(vfs.rename(ctx, null, "/work", null, "/work/tools/inside")), "EINVAL");
    assert.equal(await errno(vfs.rename(ctx, null, "/work/y", null, "/tmp/y")), "EXDEV");
    // nlink of a directory counts its subdirectories.
    const before = (await vfs.stat(ctx, null, "/work")).nlink;
    await vfs.mkdir(ctx, null, "/work/n", 0o755);
    assert.equal((await vfs.stat(ctx, null, "/work")).nlink, before + 1);
    await vfs.unlink(ctx, null, "/work/n", AT_REMOVEDIR);
    assert.equal((await vfs.stat(ctx, null, "/work")).nlink, before);
  });

  it("symlinks, hard links and readlink", async () => {
    await vfs.symlink(ctx, "../etc/passwd", null, "/work/pw");
    assert.equal(await vfs.readlink(ctx, null, "/work/pw"), "../etc/passwd");
    assert.equal(await read("/work/pw"), await read("/etc/passwd"));
    const l = await vfs.stat(ctx, null, "/work/pw", AT_SYMLINK_NOFOLLOW);
    assert.equal(l.mode & 0o170000, 0o120000);
    assert.equal(l.size, "../etc/passwd".length);
    assert.equal(await errno(vfs.open(ctx, null, "/work/pw", O_RDONLY | O_NOFOLLOW)), "ELOOP");
    const path = await vfs.open(ctx, null, "/work/pw", O_PATH | O_NOFOLLOW);
    assert.equal(await vfs.readlink(ctx, inodeOf(path)!, ""), "../etc/passwd");
    assert.equal(await errno(vfs.readlink(ctx, null, "/etc/passwd")), "EINVAL");
    // Hard link of an image file: both names, one inode.
    await vfs.link(ctx, null, "/data/b.txt", null, "/work/b-link");
    const a = await vfs.stat(ctx, null, "/data/b.txt");
    const b = await vfs.stat(ctx, null, "/work/b-link");
    assert.equal(a.ino, b.ino);
    assert.equal(a.nlink, 2);
    await write("/work/b-link", "changed");
    assert.equal(await read("/data/b.txt"), "changed");
    assert.equal(fs.readFileSync(`${p.root}/data/b.txt`, "utf8"), "B".repeat(5000));
    assert.equal(await errno(vfs.link(ctx, null, "/work", null, "/work/dirlink")), "EPERM");
    // A dangling symlink with O_CREAT creates its target.
    await vfs.symlink(ctx, "created-through-link", null, "/work/dangling");
    await write("/work/dangling", "via link");
    assert.equal(await read("/work/created-through-link"), "via link");
    assert.equal(await errno(vfs.open(ctx, null, "/work/dangling", O_CREAT | O_EXCL | O_WRONLY)), "EEXIST");
  });

  it("symlink loops give ELOOP; 40 links are followed, 41 are not", async () => {
    assert.equal(await errno(read("/evil/loop1")), "ELOOP");
    assert.equal(await errno(read("/evil/self")), "ELOOP");
    assert.equal(await errno(vfs.stat(ctx, null, "/evil/loop1/x")), "ELOOP");
    assert.equal(await read("/chain/a0"), "new hello");
    assert.equal(await errno(read("/chain/b0")), "ELOOP");
    assert.equal(await errno(vfs.stat(ctx, null, "/chain/b0")), "ELOOP");
    assert.equal((await vfs.stat(ctx, null, "/chain/b0", AT_SYMLINK_NOFOLLOW)).mode & 0o170000, 0o120000);
  });

  it("returns Linux's errno for bad paths", async () => {
    assert.equal(await errno(vfs.open(ctx, null, "/nope", O_RDONLY)), "ENOENT");
    assert.equal(await errno(vfs.open(ctx, null, "/nope/x", O_RDONLY)), "ENOENT");
    assert.equal(await errno(vfs.open(ctx, null, "", O_RDONLY)), "ENOENT");
    assert.equal(await errno(vfs.open(ctx, null, "/etc/passwd/x", O_RDONLY)), "ENOTDIR");
    assert.equal(await errno(vfs.open(ctx, null, "/etc/passwd/", O_RDONLY)), "ENOTDIR");
    assert.equal(await errno(vfs.open(ctx, null, "/etc/passwd", O_RDONLY | O_DIRECTORY)), "ENOTDIR");
    assert.equal(await errno(vfs.open(ctx, null, "/etc/passwd", O_CREAT | O_EXCL | O_WRONLY)), "EEXIST");
    assert.equal(await errno(vfs.open(ctx, null, "/etc", O_WRONLY)), "EISDIR");
    assert.equal(await errno(vfs.open(ctx, null, "/etc", O_RDWR)), "EISDIR");
    assert.equal(await errno(vfs.open(ctx, null, "/newdir/", O_CREAT | O_WRONLY)), "EISDIR");
    assert.equal(await errno(vfs.open(ctx, null, `/${"n".repeat(256)}`, O_RDONLY)), "ENAMETOOLONG");
    assert.equal(await errno(vfs.open(ctx, null, `/${"d/".repeat(2100)}`, O_RDONLY)), "ENAMETOOLONG");
    assert.equal(await errno(vfs.unlink(ctx, null, "/etc")), "EISDIR");
    assert.equal(await errno(vfs.rmdir(ctx, null, "/etc/passwd")), "ENOTDIR");
    assert.equal(await errno(vfs.rmdir(ctx, null, "/tmp")), "EBUSY");
    assert.equal(await errno(vfs.mkdir(ctx, null, "/", 0o755)), "EEXIST");
    assert.equal(await errno(vfs.lookupDir(ctx, null, "/etc/passwd")), "ENOTDIR");
    assert.equal(await errno(vfs.open(ctx, null, "/evil/zero", O_RDONLY)), "ENXIO");
    // proc is rw, as on Linux: root may open a file for writing (each write is EIO), no name
    // can be made (ENOENT) or removed (EPERM); another user may not open it for writing.
    const ver = await vfs.open(ctx, null, "/proc/version", O_WRONLY);
    assert.throws(() => ver.write!(Buffer.from("x")), { code: "EIO" });
    const user: Ctx = { ...ctx, cred: { uid: 1000, gid: 1000 } };
    assert.equal(await errno(vfs.open(user, null, "/proc/version", O_WRONLY)), "EACCES");
    assert.equal(await errno(vfs.mkdir(ctx, null, "/proc/x", 0o755)), "ENOENT");
    assert.equal(await errno(vfs.unlink(ctx, null, "/proc/version")), "EPERM");
    const file = await vfs.open(ctx, null, "/etc/passwd", O_RDONLY);
    assert.equal(await errno(vfs.stat(ctx, inodeOf(file)!, "x")), "ENOTDIR");
    assert.equal(await errno(() => file.write!(Buffer.from("x"))), "EBADF");
    file.release!();
  });

  it("checks permissions for a caller that is not root", async () => {
    const user: Ctx = { cred: { uid: 2000, gid: 2000 }, cwd: vfs.root, pid: 2 };
    const owner: Ctx = { cred: { uid: 1000, gid: 1000 }, cwd: vfs.root, pid: 3 };
    assert.equal(await errno(vfs.open(user, null, "/etc/private", O_RDONLY)), "EACCES");
    assert.equal(await errno(vfs.access(user, null, "/etc/private", 4)), "EACCES");
    assert.equal(await read("/etc/private", owner), "only for uid 1000\n");
    assert.equal(await read("/etc/private", ctx), "only for uid 1000\n");
    assert.equal(await errno(vfs.open(user, null, "/etc/newfile", O_CREAT | O_WRONLY, 0o644)), "EACCES");
    assert.equal(await errno(vfs.unlink(user, null, "/etc/passwd")), "EACCES");
    assert.equal(await errno(vfs.chmod(user, null, "/etc/passwd", 0o777)), "EPERM");
    assert.equal(await errno(vfs.chown(owner, null, "/etc/private", 2000, -1)), "EPERM");
    await vfs.access(user, null, "/etc/passwd", 4);
    // Root may execute only what someone may execute.
    assert.equal(await errno(vfs.access(ctx, null, "/etc/passwd", 1)), "EACCES");
    await vfs.access(ctx, null, "/work/tools/tool", 1);
    // Search permission on a directory on the way.
    await vfs.mkdir(ctx, null, "/tmp/closed", 0o700);
    await write("/tmp/closed/f", "x");
    assert.equal(await errno(vfs.stat(user, null, "/tmp/closed/f")), "EACCES");
    // Sticky /tmp: others' files cannot be removed.
    const mine = await vfs.open(owner, null, "/tmp/owned", O_CREAT | O_WRONLY, 0o666);
    mine.release!();
    assert.equal((await vfs.stat(ctx, null, "/tmp/owned")).uid, 1000);
    assert.equal(await errno(vfs.unlink(user, null, "/tmp/owned")), "EPERM");
    await vfs.unlink(owner, null, "/tmp/owned");
  });

  it("keeps /tmp in memory, on its own device", async () => {
    await write("/tmp/t1", "tmpfs data");
    assert.equal(await read("/tmp/t1"), "tmpfs data");
    const t = await vfs.stat(ctx, null, "/tmp/t1");
    const r = await vfs.stat(ctx, null, "/etc/passwd");
    assert.notEqual(t.dev, r.dev);
    // The image's /tmp was a dangling symlink: the overlay replaced it, the host kept it.
    assert.equal(fs.readlinkSync(`${p.root}/tmp`), "/nowhere");
    assert.ok((await names("/tmp")).includes("t1"));
    assert.equal(await errno(vfs.link(ctx, null, "/tmp/t1", null, "/etc/t1")), "EXDEV");
    const d = await vfs.open(ctx, null, "/tmp/t1", O_RDWR);
    assert.equal(d.seek!(100, 0), 100);
    await d.write!(Buffer.from("end"));
    const all = Buffer.alloc(200);
    assert.equal(await d.pread!(all, 0), 103);
    assert.deepEqual(all.subarray(10, 100), Buffer.alloc(90));
    d.release!();
    const sf = encodeStatfs(await vfs.statfsPath(ctx, null, "/tmp/t1"));
    assert.equal(sf.length, 120);
    assert.equal(Number(sf.readBigInt64LE(0)), 0x01021994);
    assert.equal((await vfs.statfsPath(ctx, null, "/etc")).type, 0x794c7630);
    assert.equal((await vfs.statfsPath(ctx, null, "/proc/version")).type, 0x9fa0);
    assert.equal((await vfs.statfsPath(ctx, null, "/proc")).flags & 1, 0);
    await vfs.utimens(ctx, null, "/tmp/t1", 1_000_000_000_123n, "omit");
    assert.equal((await vfs.stat(ctx, null, "/tmp/t1")).atimeNs, 1_000_000_000_123n);
  });

  it("serves /dev/null, /dev/zero, /dev/full and /dev/urandom", async () => {
    const nul = await vfs.open(ctx, null, "/dev/null", O_RDWR);
    assert.equal(await nul.write!(Buffer.from("gone")), 4);
    assert.equal(await nul.read!(Buffer.alloc(10)), 0);
    const zero = await vfs.open(ctx, null, "/dev/zero", O_RDONLY);
    const z = Buffer.alloc(64, 0xff);
    assert.equal(await zero.read!(z), 64);
    assert.deepEqual(z, Buffer.alloc(64));
    const full = await vfs.open(ctx, null, "/dev/full", O_WRONLY);
    assert.equal(await errno(() => full.write!(Buffer.from("x"))), "ENOSPC");
    const ur = await vfs.open(ctx, null, "/dev/urandom", O_RDONLY);
    const r1 = Buffer.alloc(32);
    const r2 = Buffer.alloc(32);
    await ur.read!(r1);
    await ur.read!(r2);
    assert.notDeepEqual(r1, r2);
    const st = await vfs.stat(ctx, null, "/dev/null");
    assert.equal(st.mode, 0o020666);
    assert.equal(st.rdev, (1 << 8) | 3);
    assert.equal(await errno(vfs.open(ctx, null, "/dev/tty", O_RDWR)), "ENXIO");
    assert.ok((await names("/dev")).includes("urandom"));
  });

  it("pipes: blocking reads and writes sleep on the pipe's queue, EOF when writers close, EPIPE when readers close", async () => {
    const reader: Blockable = { blockedOn: undefined, exitStatus: undefined };
    const writer: Blockable = { blockedOn: undefined, exitStatus: undefined };
    const [r, w] = vfs.pipe();
    // The description never waits: the syscall layer blocks the task on its queue.
    assert.equal(await errno(() => r.read(Buffer.alloc(1))), "EAGAIN");
    const pending = readWaiting(reader, r, Buffer.alloc(100));
    assert.equal(reader.blockedOn?.reason, "read", "an empty pipe's read blocks the task");
    assert.equal(r.queue.size, 1);
    w.write(Buffer.from("ping"));
    assert.equal(await pending, 4);
    assert.equal(reader.blockedOn, undefined);
    assert.equal(r.queue.size, 0, "the woken block left the queue");
    const big = Buffer.alloc(200_000, 7);
    const writing = writeWaiting(writer, w, big);
    assert.equal(writer.blockedOn?.reason, "write", "a full pipe's write blocks the task");
    let got = 0;
    const buf = Buffer.alloc(65536);
    while (got < big.length) got += await readWaiting(reader, r, buf);
    assert.equal(await writing, big.length, "a blocking write goes in whole");
    w.release();
    assert.equal(await readWaiting(reader, r, buf), 0);
    const [r2, w2] = vfs.pipe(O_NONBLOCK);
    assert.equal(await errno(() => readWaiting(reader, r2, Buffer.alloc(1))), "EAGAIN");
    r2.release();
    assert.equal(await errno(() => writeWaiting(writer, w2, Buffer.from("x"))), "EPIPE");
    w2.release();
    // A reader waiting when the last writer goes away sees EOF.
    const [r3, w3] = vfs.pipe();
    const waiting = readWaiting(reader, r3, Buffer.alloc(1));
    w3.release();
    assert.equal(await waiting, 0);
    // An interrupted reader (a kill, later a signal) fails with EINTR and leaves the queue.
    const [r4, w4] = vfs.pipe();
    const stuck = readWaiting(reader, r4, Buffer.alloc(1));
    interrupt(reader);
    assert.equal(await errno(() => stuck), "EINTR");
    assert.equal(r4.queue.size, 0);
    r4.release();
    w4.release();
  });

  it("FIFOs (mkfifo's and the image's) are the kernel's own pipes", async () => {
    await vfs.mknod(ctx, null, "/tmp/fifo", 0o010644);
    assert.equal((await vfs.stat(ctx, null, "/tmp/fifo")).mode, 0o010644);
    assert.equal(await errno(vfs.open(ctx, null, "/tmp/fifo", O_WRONLY | O_NONBLOCK)), "ENXIO");
    // A reader's open waits for a writer.
    const opener: Blockable = { blockedOn: undefined, exitStatus: undefined };
    const r = await vfs.open(ctx, null, "/tmp/fifo", O_RDONLY);
    let opened = false;
    const reading = openWaiting(opener, r).then(() => {
      opened = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(opened, false);
    assert.equal(opener.blockedOn?.reason, "open");
    const w = await vfs.open(ctx, null, "/tmp/fifo", O_WRONLY);
    await reading;
    await openWaiting(opener, w);
    await w.write!(Buffer.from("through the fifo"));
    w.release!();
    assert.equal((await readAll(r)).toString(), "through the fifo");
    r.release!();
    // A writer that opens, writes and leaves before the waiting reader runs still ends its wait.
    // (The writer is made on the FIFO's pipe directly, so nothing yields between its steps.)
    const late = (await vfs.open(ctx, null, "/tmp/fifo", O_RDONLY)) as PipeReader;
    const lateOpen = openWaiting(opener, late);
    const w2 = new PipeWriter(late.pipe, O_WRONLY);
    w2.write(Buffer.from("left already"));
    w2.release();
    await lateOpen;
    assert.equal((await readAll(late)).toString(), "left already");
    late.release!();
    // The image's FIFO: the host FIFO is never opened (that would block the gofer).
    const ir = await vfs.open(ctx, null, "/evil/fifo", O_RDONLY | O_NONBLOCK);
    const iw = await vfs.open(ctx, null, "/evil/fifo", O_WRONLY);
    await iw.write!(Buffer.from("img"));
    assert.equal(await ir.read!(Buffer.alloc(10)), 3);
    ir.release!();
    iw.release!();
    assert.equal(await errno(vfs.mknod(ctx, null, "/tmp/dev", 0o020644, 0x103)), "EPERM");
  });

  it("proc: self, version, mounts, cmdline, fd links", async () => {
    const stdin = vfs.pipe();
    const fds = new Map<number, FileDescription>([[0, stdin[0]]]);
    const procs: ProcessSource = {
      pids: () => [42],
      get: (pid) =>
        pid === 42
          ? {
              pid,
              ppid: 0,
              cmdline: ["/bin/tool", "-x"],
              exe: "/bin/tool",
              cwd: () => "/",
              uid: 0,
              gid: 0,
              groups: [],
              umask: 0o022,
              comm: "tool",
              state: () => "R",
              startNs: process.hrtime.bigint(),
              usage: () => ({ utimeTicks: 0, stimeTicks: 0, vsize: 0, rssPages: 0 }),
              signals: () => ({ pending: 0n, blocked: 0n, ignored: 0n, caught: 0n }),
              fds: () => fds,
              environ: () => Buffer.from("A=1\0"),
              root: () => "/",
              setComm: () => {},
              cloexec: () => false,
              maps: () => [],
              rlimits: () => new Map(),
              oomScoreAdj: 0,
              threads: () => [{ tid: 42, comm: "tool", state: () => "R" as const }],
              hostname: () => "box",
              domainname: () => "(none)",
              auxv: () => Buffer.alloc(16),
              memRead: () => Buffer.alloc(0),
              layout: () => ({ startStack: 0, argStart: 0, argEnd: 0, envStart: 0, envEnd: 0, brkStart: 0 }),
              memWrite: () => 0,
            }
          : undefined,
    };
    vfs.processes = procs;
    const me: Ctx = { ...ctx, pid: 42 };
    assert.equal(await vfs.readlink(me, null, "/proc/self"), "42");
    assert.equal(await read("/proc/self/cmdline", me), "/bin/tool\0-x\0");
    assert.equal(await vfs.readlink(me, null, "/proc/42/exe"), "/bin/tool");
    assert.match(await read("/proc/version"), /^Linux version \S+moat/);
    assert.match(await read("/proc/mounts", me), /^overlay \/ overlay .*\ntmpfs \/tmp tmpfs /ms);
    assert.match(await read("/proc/meminfo"), /^MemTotal: +\d+ kB/);
    assert.match(await read("/proc/cpuinfo"), /^processor\t: 0/);
    assert.deepEqual(await names("/proc/42/fd"), [".", "..", "0"]);
    assert.match(await vfs.readlink(me, null, "/proc/self/fd/0"), /^pipe:\[\d+\]$/);
    const file = await vfs.open(me, null, "/data/b.txt", O_RDONLY);
    fds.set(3, file);
    assert.equal(await vfs.readlink(me, null, "/proc/self/fd/3"), "/data/b.txt");
    assert.equal(
      (await vfs.stat(me, null, "/proc/self/fd/3")).ino,
      (await vfs.stat(me, null, "/data/b.txt")).ino,
    );
    const reopened = await vfs.open(me, null, "/proc/self/fd/3", O_RDONLY);
    assert.equal((await readAll(reopened)).toString(), await read("/data/b.txt"));
    reopened.release!();
    file.release!();
    fds.delete(3);
    // /dev/stdin reaches the process's descriptor 0 through the magic link.
    const again = await vfs.open(me, null, "/dev/stdin", O_RDONLY);
    stdin[1].write(Buffer.from("through proc"));
    assert.equal((await again.read!(Buffer.alloc(100))) as number, 12);
    again.release!();
    assert.ok((await names("/proc")).includes("42"));
    assert.equal(await errno(vfs.stat(me, null, "/proc/43")), "ENOENT");
  });

  it("encodes struct stat (144 bytes) and struct statx (256 bytes)", async () => {
    const s = await vfs.stat(ctx, null, "/data/b.txt");
    const raw = encodeStat(s);
    assert.equal(raw.length, 144);
    const back = decodeStat(raw);
    assert.equal(back.ino, s.ino);
    assert.equal(back.mode, s.mode);
    assert.equal(back.nlink, s.nlink);
    assert.equal(back.size, s.size);
    assert.equal(back.dev, s.dev);
    assert.equal(back.mtimeNs, s.mtimeNs);
    assert.equal(back.blocks, s.blocks);
    const x = encodeStatx(s);
    assert.equal(x.length, 256);
    assert.equal(x.readUInt32LE(0), 0x7ff);
    assert.equal(x.readUInt16LE(28), s.mode);
    assert.equal(Number(x.readBigUInt64LE(32)), s.ino);
    assert.equal(Number(x.readBigUInt64LE(40)), s.size);
    assert.equal(x.readBigInt64LE(112) * 1_000_000_000n + BigInt(x.readUInt32LE(120)), s.mtimeNs);
    // A time before the epoch keeps nsec in [0, 1e9).
    const old = encodeStat({ ...s, atimeNs: -1n });
    assert.equal(old.readBigInt64LE(72), -1n);
    assert.equal(old.readBigInt64LE(80), 999_999_999n);
  });

  it("working directories, getcwd, dirfds and AT_EMPTY_PATH", async () => {
    const cwd = await vfs.lookupDir(ctx, null, "/work/tools");
    const here: Ctx = { ...ctx, cwd };
    assert.equal(vfs.getcwd(here), "/work/tools");
    assert.equal(await read("tool", here), "#!/bin/sh\necho tool\n");
    assert.equal(await read("../../etc/private", here), "only for uid 1000\n");
    assert.equal(await read("../../../../../etc/private", here), "only for uid 1000\n");
    const dirfd = await vfs.open(ctx, null, "/data", O_RDONLY | O_DIRECTORY);
    const at = inodeOf(dirfd)!;
    assert.ok(at instanceof DirInode);
    assert.equal((await vfs.stat(ctx, at, "b.txt")).size, (await vfs.stat(ctx, null, "/data/b.txt")).size);
    assert.equal((await vfs.stat(ctx, at, "", AT_EMPTY_PATH)).ino, (await vfs.stat(ctx, null, "/data")).ino);
    assert.equal(await errno(vfs.stat(ctx, at, "")), "ENOENT");
    // Through a real descriptor table, as the *at syscalls will do it.
    const table = new FdTable();
    const n = table.install(dirfd);
    assert.equal(dirfdInode(table, n), at);
    assert.equal(dirfdInode(table, -100), null);
    assert.equal(await errno(() => dirfdInode(table, 77)), "EBADF");
    const out = table.install(new StreamOutput(new PassThrough()));
    const host = dirfdInode(table, out)!;
    assert.equal(await errno(vfs.stat(ctx, host, "x")), "ENOTDIR");
    assert.equal((await vfs.stat(ctx, host, "", AT_EMPTY_PATH)).mode & 0o170000, 0o010000);
    table.closeAll();
    assert.equal(vfs.getcwd({ ...ctx, cwd: await vfs.lookupDir(ctx, null, "/dev/shm") }), "/dev/shm");
    // A removed working directory has no path.
    await vfs.mkdir(ctx, null, "/tmp/gone", 0o755);
    const gone = await vfs.lookupDir(ctx, null, "/tmp/gone");
    await vfs.rmdir(ctx, null, "/tmp/gone");
    assert.equal(await errno(() => vfs.getcwd({ ...ctx, cwd: gone })), "ENOENT");
    assert.equal(await errno(vfs.open({ ...ctx, cwd: gone }, null, "new", O_CREAT | O_WRONLY)), "ENOENT");
  });

  it("the kernel's walk keeps every hostile symlink and '..' inside the container", async () => {
    const secretHost = fs.statSync(p.secretPath);
    for (const path of [...HOSTILE_PATHS, ...HOSTILE_PATHS.map((h) => `/${h}`)]) {
      for (const flags of [0, AT_SYMLINK_NOFOLLOW]) {
        let st: Awaited<ReturnType<Vfs["stat"]>>;
        try {
          st = await vfs.stat(ctx, null, path, flags);
        } catch (e) {
          assert.ok(e instanceof KernelError, String(e));
          continue;
        }
        assert.ok(!(st.ino === secretHost.ino && st.size === p.secret.length), `${path} reached the secret`);
      }
      try {
        const content = await read(path);
        assert.ok(!content.includes(p.secret), `${path} returned the secret`);
      } catch (e) {
        assert.ok(e instanceof KernelError, String(e));
      }
    }
    // What the links do resolve to is the container's own view.
    assert.equal(await read("/evil/passwd-up"), await read("/etc/passwd"));
    assert.equal(await read("/evil/rootlink/etc/private"), "only for uid 1000\n");
    assert.equal(await read("/../../etc/private"), "only for uid 1000\n");
    assert.equal(await read("/evil/dotdot/evil/dotdot/etc/private"), "only for uid 1000\n");
  });

  it("opens for execve only regular files the caller may execute", async () => {
    const exe = await vfs.openExec(ctx, null, "/work/tools/tool");
    assert.equal((await readAll(exe)).toString(), "#!/bin/sh\necho tool\n");
    exe.release();
    assert.equal(await errno(vfs.openExec(ctx, null, "/etc/passwd")), "EACCES");
    assert.equal(await errno(vfs.openExec(ctx, null, "/work")), "EACCES");
    assert.equal(await errno(vfs.openExec(ctx, null, "/dev/null")), "EACCES");
    assert.equal(await errno(vfs.openExec(ctx, null, "/nope")), "ENOENT");
    // Execute permission is enough: others may run a mode 0711 program they cannot read.
    await write("/tmp/prog", "\x7fELF...");
    await vfs.chmod(ctx, null, "/tmp/prog", 0o711);
    const user: Ctx = { cred: { uid: 2000, gid: 2000 }, cwd: vfs.root, pid: 2 };
    assert.equal(await errno(vfs.open(user, null, "/tmp/prog", O_RDONLY)), "EACCES");
    const prog = await vfs.openExec(user, null, "/tmp/prog");
    assert.equal(prog.path, "/tmp/prog");
    prog.release();
    // The path shown is the file's, not the symlink's.
    await vfs.symlink(ctx, "../work/tools/tool", null, "/tmp/toollink");
    const viaLink = await vfs.openExec(ctx, null, "/tmp/toollink");
    assert.equal(viaLink.path, "/work/tools/tool");
    viaLink.release();
  });

  it("bounds the memory a container's files may take (ENOSPC), and frees what is removed", async () => {
    const small = await Vfs.create({ gofer, memoryLimit: 1 << 20 });
    const c = small.adminCtx(1);
    const d = await small.open(c, null, "/tmp/big", O_CREAT | O_WRONLY, 0o644);
    assert.equal(await d.write!(Buffer.alloc(900_000)), 900_000);
    assert.equal(await errno(() => d.write!(Buffer.alloc(200_000))), "ENOSPC");
    d.release!();
    await small.unlink(c, null, "/tmp/big");
    const e = await small.open(c, null, "/tmp/again", O_CREAT | O_WRONLY, 0o644);
    assert.equal(await e.write!(Buffer.alloc(900_000)), 900_000);
    e.release!();
    // An open file keeps its space until the last description closes.
    const f = await small.open(c, null, "/tmp/again", O_RDONLY);
    await small.unlink(c, null, "/tmp/again");
    const g = await small.open(c, null, "/tmp/third", O_CREAT | O_WRONLY, 0o644);
    assert.equal(await errno(() => g.write!(Buffer.alloc(200_000))), "ENOSPC");
    f.release!();
    assert.equal(await g.write!(Buffer.alloc(200_000)), 200_000);
    g.release!();
    // Copy-up of an image file counts too.
    assert.equal(await errno(small.truncate(c, null, "/data/b.txt", 2 << 20)), "ENOSPC");
  });

  it("measures a cached lookup", async (t) => {
    await vfs.stat(ctx, null, "/work/tools/tool");
    const times: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const t0 = process.hrtime.bigint();
      await vfs.stat(ctx, null, "/work/tools/tool");
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    t.diagnostic(`cached 3-component stat: median ${times[times.length >> 1]!.toFixed(2)} us`);
    assert.ok(times.length === 20000);
  });
});
