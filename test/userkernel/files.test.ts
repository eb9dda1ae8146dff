// File syscalls through the VFS and the gofer: a static C program that exercises them (and
// their errors) prints the same lines natively, under a prefix directory, as under the
// userkernel with the same content as its rootfs.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { isMoatError } from "../../src/spec/errors.js";
import { runNative, runUser, workdir } from "./helpers.js";
import { runIn, treeHash } from "./rootfs-run.js";

/** The tree the program expects at its root. */
function makeTree(root: string): void {
  fs.mkdirSync(path.join(root, "data"), { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.join(root, "work"), { mode: 0o755 });
  fs.chmodSync(path.join(root, "data"), 0o755);
  fs.writeFileSync(path.join(root, "data", "hello.txt"), "hello moat\n");
  fs.chmodSync(path.join(root, "data", "hello.txt"), 0o644);
  fs.symlinkSync("hello.txt", path.join(root, "data", "link"));
}

describe("file syscalls against a rootfs", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let program = "";
  let nativeRoot = "";
  let userRoot = "";
  before(async () => {
    w = await workdir();
    program = await w.compile("files");
    nativeRoot = path.join(w.dir, "native");
    userRoot = path.join(w.dir, "user");
    makeTree(nativeRoot);
    makeTree(userRoot);
    fs.copyFileSync(program, path.join(userRoot, "files"));
    fs.chmodSync(path.join(userRoot, "files"), 0o755);
  });
  after(() => w.remove());

  it("prints the same as natively, errors included, and leaves the rootfs unchanged", async () => {
    const before = treeHash(userRoot);
    const native = await runNative(program, [nativeRoot]);
    const user = await runIn(userRoot, ["/files", ""], { env: [] });
    assert.equal(native.code, 0, native.stderr);
    assert.equal(user.code, 0, user.stderr);
    assert.equal(user.stdout, native.stdout);
    // The comparison only means something if the program got far and met the errors.
    for (const line of [
      "content: hello moat",
      "pread bad pointer: EFAULT",
      "mapped: hello moat",
      "mmap shared writable on O_RDONLY: EACCES",
      "open bad pointer: EFAULT",
      "stat bad buffer: EFAULT",
      "close again: EBADF",
      "open missing: ENOENT",
      "lseek bad whence: EINVAL",
      "mkdir again: EEXIST",
      "open through file: ENOTDIR",
      "open dir for write: EISDIR",
      "link -> hello.txt",
      "dir /work/d: ../4 ./4 g/8 h/8 s/10",
      "rename: 0",
      "cwd: /data",
      "fcntl getfd 20: 1",
      "closed by close_range: EBADF",
      "open in chroot: 0",
      "open above chroot: ENOENT",
      "cwd in chroot: /",
    ])
      assert.ok(user.stdout.includes(`${line}\n`), `missing "${line}" in:\n${user.stdout}`);
    // Writes land in the sandbox's overlay, never in the host's rootfs.
    assert.equal(treeHash(userRoot), before);
  });

  it("finds the program in the rootfs, never on the host", async () => {
    // /bin/busybox exists on the host but not in this rootfs.
    assert.ok(fs.existsSync("/bin/busybox"));
    await assert.rejects(runIn(userRoot, ["/bin/busybox", "true"], { env: [] }), (e) =>
      isMoatError(e, "ENOENT"),
    );
    await assert.rejects(
      runIn(userRoot, ["files"], { env: ["PATH=/bin:/usr/bin"] }),
      (e) => isMoatError(e, "ENOENT") && /PATH=\/bin:\/usr\/bin/.test(e.message),
    );
    // Found through PATH, and through a path with "..": the same program runs.
    const viaPath = await runIn(userRoot, ["files", ""], { env: ["PATH=/nope:/data/..:/bin"] });
    assert.equal(viaPath.code, 0);
    assert.match(viaPath.stdout, /^content: hello moat$/m);
    // A directory or a file without execute permission is not a program.
    await assert.rejects(runIn(userRoot, ["/data"], { env: [] }), (e) => isMoatError(e, "EACCES"));
    await assert.rejects(runIn(userRoot, ["/data/hello.txt"], { env: [] }), (e) => isMoatError(e, "EACCES"));
  });

  it("a write to a pipe nobody reads fails with EPIPE or raises SIGPIPE, as natively", async () => {
    const native = await runNative(program, [nativeRoot, "sigpipe"]);
    const user = await runIn(userRoot, ["/files", "", "sigpipe"], { env: [] });
    assert.equal(native.signal, "SIGPIPE");
    assert.equal(user.signal, native.signal);
    assert.equal(user.stdout, "write ignored: EPIPE\n");
    assert.equal(user.stdout, native.stdout);
  });

  it("without a rootfs, path syscalls fail with ENOSYS as before", async () => {
    const r = await runUser(program, [""]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^open hello: ENOSYS$/m);
    assert.match(r.stdout, /^pipe read: 7$/m);
  });
});
