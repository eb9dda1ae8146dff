// The runtime spec's mounts in the userkernel: bind mounts of host directories and files
// (read-write volumes reach the host, read-only ones refuse writes with EROFS), tmpfs with
// size and mode, the default spec's entries accepted, destinations resolved inside the
// container, sources confined by the gofer, unknown types refused by name.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import type { Sandbox } from "../../src/sandbox/sandbox.js";
import { isMoatError } from "../../src/spec/index.js";
import type { Mount, Spec } from "../../src/spec/runtime.js";
import { O_DIRECTORY, O_PATH, O_RDONLY, O_RDWR } from "../../src/sys/file.js";
import { GoferClient } from "../../src/userkernel/gofer/client.js";
import { UserkernelBackend } from "../../src/userkernel/sandbox.js";
import { Collector } from "../helpers/streams.js";
import { type BusyboxBundle, busyboxBundle, runIn, treeHash } from "./rootfs-run.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); ) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("userkernel mounts", { timeout: 120_000 }, () => {
  let b: BusyboxBundle;
  let spec: Spec;
  let vol = "";
  let roFile = "";
  let termLog = "";
  let rootfsHash = "";
  const roText = `ro-content-${randomBytes(8).toString("hex")}\n`;

  before(async () => {
    b = await busyboxBundle();
    spec = JSON.parse(fs.readFileSync(path.join(path.dirname(b.rootfs), "config.json"), "utf8")) as Spec;
    vol = path.join(b.base, "vol");
    fs.mkdirSync(vol);
    fs.writeFileSync(path.join(vol, "from-host-before"), "early\n");
    termLog = path.join(b.base, "termination-log");
    fs.writeFileSync(termLog, "");
    roFile = path.join(b.base, "hosts");
    fs.writeFileSync(roFile, roText);
    rootfsHash = treeHash(b.rootfs);
  });
  after(() => b.remove());

  describe("one container: a rw directory volume, a ro file, a tmpfs, execs", () => {
    let sandbox: Sandbox;
    const initIn = new PassThrough();
    const initOut = new Collector();
    const initErr = new Collector();
    let n = 0;

    before(async () => {
      const mounts: Mount[] = [
        ...(spec.mounts ?? []),
        { destination: "/data", type: "bind", source: vol, options: ["rbind", "rprivate", "rw"] },
        { destination: "/etc/moat-hosts", type: "bind", source: roFile, options: ["rbind", "ro"] },
        { destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["size=1m", "mode=0700"] },
        // What the CRI passes for terminationMessagePath: a read-write file.
        { destination: "/dev/termination-log", type: "bind", source: termLog, options: ["rbind", "rw"] },
      ];
      sandbox = await new UserkernelBackend().createSandbox({ id: "uk-mounts", stateDir: b.base });
      // Only sh builtins: the kernel has no fork, so each program of the test is its own process.
      const script = [
        "read early < /data/from-host-before",
        'echo "$early"',
        "echo from-container > /data/c.txt",
        "echo ready",
        "read go",
        "read h < /data/h.txt",
        'echo "$h"',
        "read go",
      ].join("; ");
      await sandbox.create({
        id: "c",
        bundle: path.dirname(b.rootfs),
        spec: { ...spec, mounts, process: { ...spec.process!, args: ["sh", "-c", script] } },
        rootfs: b.rootfs,
        stdio: { stdin: initIn, stdout: initOut, stderr: initErr },
      });
      await sandbox.start("c");
    });
    after(async () => {
      await sandbox?.destroy();
    });

    async function exec(args: string[]) {
      const stdout = new Collector();
      const stderr = new Collector();
      const execId = `e${++n}`;
      await sandbox.exec({
        containerId: "c",
        execId,
        process: { ...spec.process!, args },
        stdio: { stdout, stderr },
      });
      const status = await sandbox.wait("c", execId);
      return { code: status.code, stdout: stdout.text(), stderr: stderr.text() };
    }

    test("the container writes into the volume and the host sees it; the host writes and the container sees it", async () => {
      await until("the init's write", () => initOut.text().includes("ready"));
      assert.equal(initErr.text(), "");
      assert.equal(initOut.text(), "early\nready\n");
      assert.equal(fs.readFileSync(path.join(vol, "c.txt"), "utf8"), "from-container\n");
      // Written by the host after the container started: no stale cache hides it.
      fs.writeFileSync(path.join(vol, "h.txt"), "from-host\n");
      initIn.write("go\n");
      await until("the init to read the host's file", () => initOut.text().includes("from-host"));
      assert.equal(initOut.text(), "early\nready\nfrom-host\n");
    });

    test("an exec sees the same volume: mkdir, rename, append, remove reach the host", async () => {
      const ok = async (args: string[]) => {
        const r = await exec(args);
        assert.equal(r.stderr, "", args.join(" "));
        assert.equal(r.code, 0, args.join(" "));
        return r.stdout;
      };
      await ok(["mkdir", "/data/sub"]);
      await ok(["sh", "-c", "echo deep > /data/sub/y"]);
      assert.equal(fs.readFileSync(path.join(vol, "sub", "y"), "utf8"), "deep\n");
      assert.deepEqual((await ok(["ls", "/data"])).trim().split("\n"), [
        "c.txt",
        "from-host-before",
        "h.txt",
        "sub",
      ]);
      await ok(["mv", "/data/c.txt", "/data/d.txt"]);
      await ok(["sh", "-c", "echo more >> /data/d.txt"]);
      await ok(["rm", "/data/sub/y"]);
      await ok(["rmdir", "/data/sub"]);
      await ok(["chmod", "600", "/data/d.txt"]);
      assert.deepEqual(fs.readdirSync(vol).sort(), ["d.txt", "from-host-before", "h.txt"]);
      assert.equal(fs.readFileSync(path.join(vol, "d.txt"), "utf8"), "from-container\nmore\n");
      assert.equal(fs.statSync(path.join(vol, "d.txt")).mode & 0o777, 0o600);
      // A program copied into the volume runs from it (execve reads it through the gofer).
      await ok(["cp", "/bin/busybox", "/data/busybox"]);
      assert.equal(await ok(["/data/busybox", "echo", "ran from the volume"]), "ran from the volume\n");
      await ok(["ln", "-s", "busybox", "/data/bb-link"]);
      assert.equal(fs.readlinkSync(path.join(vol, "bb-link")), "busybox");
      await ok(["rm", "/data/busybox", "/data/bb-link"]);
      // A file the host changes is read anew.
      fs.writeFileSync(path.join(vol, "h.txt"), "changed by the host, longer now\n");
      assert.equal(await ok(["cat", "/data/h.txt"]), "changed by the host, longer now\n");
    });

    test("a read-only file mount shows its content and refuses writes with EROFS", async () => {
      const r = await exec(["cat", "/etc/moat-hosts"]);
      assert.equal(r.stdout, roText);
      const w = await exec(["sh", "-c", "echo x > /etc/moat-hosts"]);
      assert.notEqual(w.code, 0);
      assert.match(w.stderr, /Read-only file system/);
      const rm = await exec(["rm", "-f", "/etc/moat-hosts"]);
      assert.notEqual(rm.code, 0);
      // A mount point cannot be removed (EBUSY), as on Linux.
      assert.match(rm.stderr, /Device or resource busy/);
      assert.equal(fs.readFileSync(roFile, "utf8"), roText);
    });

    test("a read-write file mount is written in place", async () => {
      const r = await exec(["sh", "-c", "echo goodbye > /dev/termination-log"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(fs.readFileSync(termLog, "utf8"), "goodbye\n");
    });

    test("a tmpfs has its mode and size; the mounts are listed in /proc/mounts", async () => {
      assert.equal((await exec(["stat", "-c", "%a", "/scratch"])).stdout, "700\n");
      assert.equal((await exec(["sh", "-c", "echo t > /scratch/f"])).code, 0);
      assert.equal((await exec(["cat", "/scratch/f"])).stdout, "t\n");
      const dd = await exec(["dd", "if=/dev/zero", "of=/scratch/big", "bs=1024", "count=2048"]);
      assert.notEqual(dd.code, 0);
      assert.match(dd.stderr, /No space left on device/);
      const mounts = (await exec(["cat", "/proc/mounts"])).stdout;
      assert.match(mounts, / \/data bind rw/);
      assert.match(mounts, / \/etc\/moat-hosts bind ro/);
      assert.match(mounts, /tmpfs \/scratch tmpfs rw,nosuid,nodev,size=1024k/);
      // Nothing of the tmpfs or the file mount's placeholder reached the host's rootfs.
      assert.equal(treeHash(b.rootfs), rootfsHash);
    });
  });

  test("a read-only directory volume refuses every change with EROFS", async () => {
    const mounts: Mount[] = [{ destination: "/v", type: "bind", source: vol, options: ["bind", "ro"] }];
    const r = await runIn(
      b.rootfs,
      ["sh", "-c", "read l < /v/from-host-before; echo $l; echo x > /v/new; echo t=$?"],
      {
        mounts,
      },
    );
    assert.equal(r.stdout, "early\nt=1\n");
    assert.match(r.stderr, /Read-only file system/);
    const m = await runIn(b.rootfs, ["mkdir", "/v/d"], { mounts });
    assert.notEqual(m.code, 0);
    assert.match(m.stderr, /Read-only file system/);
    assert.ok(!fs.existsSync(path.join(vol, "new")));
    assert.ok(!fs.existsSync(path.join(vol, "d")));
  });

  test("a destination through a symlink planted in the image stays inside the rootfs", async () => {
    const src = path.join(b.base, "planted-src");
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, "marker"), "marker\n");
    // Where the symlinks would lead on the host: it must never be created there.
    const hostTarget = path.join(b.base, "host-target");
    fs.mkdirSync(hostTarget);
    fs.symlinkSync(hostTarget, path.join(b.rootfs, "abs-link"));
    fs.symlinkSync("../../../../../../..", path.join(b.rootfs, "up-link"));
    try {
      const rel = hostTarget.slice(1);
      const r = await runIn(b.rootfs, ["sh", "-c", `cat ${hostTarget}/m1/marker /${rel}/m2/marker`], {
        mounts: [
          { destination: "/abs-link/m1", type: "bind", source: src, options: ["rbind"] },
          { destination: `/up-link/${rel}/m2`, type: "bind", source: src, options: ["rbind"] },
        ],
      });
      assert.equal(r.stderr, "");
      assert.equal(r.stdout, "marker\nmarker\n");
      assert.deepEqual(fs.readdirSync(hostTarget), [], "nothing was made on the host where the links point");
    } finally {
      fs.rmSync(path.join(b.rootfs, "abs-link"));
      fs.rmSync(path.join(b.rootfs, "up-link"));
    }
  });

  describe("a volume whose inside holds symlinks pointing out of it", () => {
    let src = "";
    let outside = "";
    const secret = `SECRET-${randomBytes(12).toString("hex")}`;

    before(() => {
      src = path.join(b.base, "hostile-vol");
      outside = path.join(b.base, "outside");
      fs.mkdirSync(src);
      fs.mkdirSync(outside);
      fs.writeFileSync(path.join(outside, "secret"), secret);
      fs.symlinkSync("../outside", path.join(src, "rel"));
      fs.symlinkSync(outside, path.join(src, "abs"));
      fs.symlinkSync("/", path.join(src, "slash"));
    });

    test("the container cannot read or write beyond the source", async () => {
      const rel = outside.slice(1);
      const mounts: Mount[] = [{ destination: "/v", type: "bind", source: src, options: ["rbind", "rw"] }];
      const r = await runIn(
        b.rootfs,
        ["cat", "/v/rel/secret", "/v/abs/secret", `/v/slash/${rel}/secret`, "/v/../outside/secret"],
        { mounts },
      );
      assert.equal(r.code, 1);
      assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), "the secret leaked");
      const w = await runIn(
        b.rootfs,
        ["sh", "-c", "echo w > /v/rel/planted; echo w > /v/abs/planted; echo end"],
        {
          mounts,
        },
      );
      assert.equal(w.stdout, "end\n");
      await runIn(b.rootfs, ["mkdir", "-p", `/v/slash/${rel}/made`], { mounts });
      assert.deepEqual(fs.readdirSync(outside), ["secret"], "a write escaped the volume");
    });

    test("the gofer itself refuses paths through the source's symlinks", async () => {
      const g = await GoferClient.start(b.rootfs, [{ path: src, writable: true }]);
      try {
        // follow: symlinks resolve with the source as "/", so ../outside is clamped.
        await assert.rejects(g.open("rel/secret", O_RDONLY, true, 1), { code: "ENOENT" });
        await assert.rejects(g.open(`abs/secret`, O_RDONLY, true, 1), { code: "ENOENT" });
        // Walked paths (what the kernel sends) may hold no symlink at all.
        await assert.rejects(g.open("rel/secret", O_RDONLY, false, 1), { code: "ELOOP" });
        await assert.rejects(g.change({ op: "mkdir", path: "abs/x", mode: 0o755, uid: 0, gid: 0 }, 1), {
          code: "ENOTDIR" /* the parent is opened O_DIRECTORY|O_NOFOLLOW: a symlink is no directory */,
        });
        await assert.rejects(g.change({ op: "unlink", path: "../outside/secret", dir: false }, 1), {
          code: "ENOENT",
        });
        // The rootfs (root 0) is never writable, whatever is asked.
        await assert.rejects(g.openWrite("etc/passwd", O_RDWR, 0), { code: "EROFS" });
        await assert.rejects(g.change({ op: "mkdir", path: "x", mode: 0o755, uid: 0, gid: 0 }, 0), {
          code: "EROFS",
        });
        // A root that does not exist is refused.
        await assert.rejects(g.open(".", O_PATH | O_DIRECTORY, false, 7), { code: "EINVAL" });
        assert.deepEqual(fs.readdirSync(outside), ["secret"]);
      } finally {
        await g.close();
      }
    });
  });

  test("a mount type the userkernel cannot do is refused by name, at create", async () => {
    const nfs: Mount = { destination: "/net", type: "nfs", source: "server:/export", options: [] };
    const refused = (e: unknown) =>
      isMoatError(e) &&
      e.code === "ENOTSUP" &&
      /mounts\[0\] \(nfs on \/net\).*cannot mount a nfs file system/.test(e.message);
    await assert.rejects(runIn(b.rootfs, ["true"], { mounts: [nfs] }), refused);
    const sandbox = await new UserkernelBackend().createSandbox({ id: "uk-bad-mount", stateDir: b.base });
    try {
      await assert.rejects(
        sandbox.create({
          id: "bad",
          bundle: path.dirname(b.rootfs),
          spec: { ...spec, mounts: [...(spec.mounts ?? []), nfs] },
          rootfs: b.rootfs,
          stdio: {},
        }),
        (e: unknown) => isMoatError(e) && e.code === "ENOTSUP" && /nfs/.test(e.message),
      );
    } finally {
      await sandbox.destroy();
    }
    // A bind mount whose source is missing fails the boot with a message naming it.
    const missing = path.join(b.base, "no-such-source");
    await assert.rejects(
      runIn(b.rootfs, ["true"], {
        mounts: [{ destination: "/m", type: "bind", source: missing, options: ["rbind"] }],
      }),
      (e: unknown) => isMoatError(e) && e.message.includes(missing),
    );
  });
});
