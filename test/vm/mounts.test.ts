// The runtime spec's mounts in the vm isolation, on one real QEMU guest (TCG here):
// read-write volumes whose writes reach the host both ways, read-only file mounts
// (/etc/hosts as the CRI passes it) held read-only in the guest and on the host, tmpfs
// with its size and mode, the default spec's sysfs/mqueue/cgroup entries, destinations
// through symlinks the image planted, clear errors for what moat cannot mount, and no
// host mount left behind by delete() or destroy().
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { removeBundle } from "../../src/image/bundle.js";
import type { Sandbox } from "../../src/sandbox/sandbox.js";
import { isMoatError } from "../../src/spec/errors.js";
import type { Mount, Spec } from "../../src/spec/runtime.js";
import { ensureAssets } from "../../src/vm/assets/build.js";
import { VmBackend } from "../../src/vm/sandbox.js";
import { Collector } from "../helpers/streams.js";
import { defaultBundle, qemuProcessesMentioning } from "./helpers.js";

/** Mount points at or below dir, with their mount options, from the host's mount table. */
function mountsUnder(dir: string): Array<{ point: string; options: string }> {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f[4] !== undefined && (f[4] === dir || f[4].startsWith(`${dir}/`)))
    .map((f) => ({ point: f[4]!, options: f[5]! }));
}

describe("vm sandbox mounts", () => {
  let tmp: string;
  let bundleDir: string;
  let spec: Spec;
  let rootfs: string;
  let stateDir: string;
  let host: string;
  let sandbox: Sandbox | undefined;
  let n = 0;

  before(async () => {
    await ensureAssets();
    ({ tmp, bundleDir, spec, rootfs } = await defaultBundle("moat-vm-mounts-test-"));
    // What a hostile image could hold: an absolute and a climbing relative symlink.
    symlinkSync("/etc", join(rootfs, "evil"));
    symlinkSync("../../../../../../../run/moat", join(rootfs, "climb"));
    host = join(tmp, "host");
    mkdirSync(host);
    stateDir = join(tmp, "state");
    sandbox = await new VmBackend().createSandbox({
      id: "vm-mounts",
      stateDir,
      memoryMiB: 512,
      network: "none",
    });
  });

  after(async () => {
    try {
      await sandbox?.destroy();
      assert.deepEqual(qemuProcessesMentioning(tmp), [], "no QEMU outlives destroy()");
      assert.deepEqual(
        mountsUnder(join(tmp, "state")),
        [],
        "no mount under the state dir outlives destroy()",
      );
      assert.equal(existsSync(stateDir), false, "destroy() removes the state dir");
      // The volumes themselves are the host's data: releasing the binds must not touch them.
      assert.equal(readFileSync(join(host, "vol", "from-container"), "utf8"), "written in the guest\n");
      assert.equal(readFileSync(join(host, "hosts"), "utf8"), "127.0.0.1 localhost\n10.9.8.7 volume-test\n");
    } finally {
      for (const pid of qemuProcessesMentioning(tmp)) process.kill(pid, "SIGKILL");
      if (bundleDir) await removeBundle(bundleDir).catch(() => {});
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  async function create(args: string[], mounts: Mount[]) {
    const id = `m${++n}`;
    const stdout = new Collector();
    const stderr = new Collector();
    await sandbox!.create({
      id,
      bundle: bundleDir,
      spec: { ...spec, process: { ...spec.process!, args }, mounts: [...(spec.mounts ?? []), ...mounts] },
      rootfs,
      stdio: { stdout, stderr },
    });
    return { id, stdout, stderr };
  }

  /** Create (never start) container `id` with exactly these mounts, no stdio: for refusals. */
  const createOnly = (id: string, mounts: Mount[]) =>
    sandbox!.create({ id, bundle: bundleDir, spec: { ...spec, mounts }, rootfs, stdio: {} });

  async function run(args: string[], mounts: Mount[]) {
    const c = await create(args, mounts);
    await sandbox!.start(c.id);
    return { ...c, done: sandbox!.wait(c.id) };
  }

  it("shares a read-write directory volume both ways, and a read-write file", async () => {
    const vol = join(host, "vol");
    mkdirSync(vol);
    writeFileSync(join(vol, "from-host"), "written on the host\n");
    const log = join(host, "termination-log");
    writeFileSync(log, "");
    const r = await run(
      [
        "sh",
        "-c",
        "cat /data/from-host; echo 'written in the guest' > /data/from-container; " +
          "echo bye > /dev/termination-log; while [ ! -e /data/later ]; do sleep 1; done; cat /data/later",
      ],
      [
        { destination: "/data", type: "bind", source: vol, options: ["rbind", "rprivate", "rw"] },
        { destination: "/dev/termination-log", type: "bind", source: log, options: ["rbind", "rw"] },
      ],
    );
    const file = join(vol, "from-container");
    // The shell creates the file, then writes it: two 9p requests the host can see apart.
    const content = () => (existsSync(file) ? readFileSync(file, "utf8") : "");
    for (let i = 0; i < 600 && !content().endsWith("\n"); i++)
      await new Promise((res) => setTimeout(res, 100));
    assert.equal(content(), "written in the guest\n");
    writeFileSync(join(vol, "later"), "the host wrote this while it ran\n");
    const st = await r.done;
    assert.equal(st.status, 0, r.stderr.text());
    assert.equal(r.stdout.text(), "written on the host\nthe host wrote this while it ran\n");
    assert.equal(readFileSync(log, "utf8"), "bye\n");
    // While the container exists, its binds are the only mounts under its volume dir.
    const volumeDir = join(stateDir, "volumes", r.id);
    assert.equal(mountsUnder(volumeDir).length, 2);
    await sandbox!.delete(r.id);
    assert.deepEqual(mountsUnder(volumeDir), [], "delete() releases the container's binds");
    assert.equal(existsSync(volumeDir), false);
    assert.equal(readFileSync(join(vol, "from-host"), "utf8"), "written on the host\n");
  });

  it("keeps a read-only file mount read-only in the guest and on the host", async () => {
    writeFileSync(join(host, "hosts"), "127.0.0.1 localhost\n10.9.8.7 volume-test\n");
    const c = await create(
      [
        "sh",
        "-c",
        "cat /etc/hosts; grep ' /etc/hosts ' /proc/self/mountinfo | cut -d' ' -f6; " +
          "echo 10.0.0.1 evil >> /etc/hosts; echo rc=$?; echo x > /etc/hosts",
      ],
      [{ destination: "/etc/hosts", type: "bind", source: join(host, "hosts"), options: ["rbind", "ro"] }],
    );
    // The host side of the share is a read-only bind: QEMU cannot write through it either.
    const binds = mountsUnder(join(stateDir, "volumes", c.id));
    assert.equal(binds.length, 1);
    assert.match(binds[0]!.options, /^ro[,$]/);
    await sandbox!.start(c.id);
    const st = await sandbox!.wait(c.id);
    assert.notEqual(st.status, 0);
    const out = c.stdout.text().split("\n");
    assert.deepEqual(out.slice(0, 2), ["127.0.0.1 localhost", "10.9.8.7 volume-test"]);
    // Read-only in the guest as well, not only refused by QEMU.
    assert.match(out[2]!, /^ro,/);
    assert.deepEqual(out.slice(3), ["rc=1", ""]);
    assert.match(c.stderr.text(), /Read-only file system|Permission denied/);
    assert.equal(readFileSync(join(host, "hosts"), "utf8"), "127.0.0.1 localhost\n10.9.8.7 volume-test\n");
    await sandbox!.delete(c.id);
  });

  it("mounts a tmpfs with its size and mode, and the default spec's sysfs, mqueue and cgroup", async () => {
    const r = await run(
      [
        "sh",
        "-c",
        "stat -c %a /scratch; grep ' /scratch ' /proc/self/mountinfo | cut -d' ' -f6-; " +
          "dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>/dev/null; echo dd=$?; " +
          // mount point, its options and its type (the field after "-")
          "for m in /sys /sys/fs/cgroup /dev/mqueue /tmp; do " +
          "awk -v m=$m '$5 == m { for (i = 7; i <= NF; i++) if ($i == \"-\") { print $5, $6, $(i + 1); break } }' /proc/self/mountinfo; " +
          "done; " +
          "touch /sys/x; echo sys=$?; " +
          // podman's --tmpfs: tmpcopyup keeps what the image had there, writes stay in the tmpfs
          "awk '$5 == \"/etc\" { print $5 }' /proc/self/mountinfo; grep -c ^root: /etc/passwd; " +
          "echo added > /etc/new; cat /etc/new; " +
          "cat /sys/fs/cgroup/cgroup.procs",
      ],
      [
        {
          destination: "/scratch",
          type: "tmpfs",
          source: "tmpfs",
          options: ["nosuid", "nodev", "size=1m", "mode=0710"],
        },
        {
          destination: "/etc",
          type: "tmpfs",
          source: "tmpfs",
          options: ["rw", "rprivate", "nosuid", "tmpcopyup"],
        },
      ],
    );
    const st = await r.done;
    assert.equal(st.status, 0, r.stderr.text());
    const lines = r.stdout.text().split("\n");
    assert.equal(lines[0], "710");
    assert.match(lines[1]!, /^rw,nosuid,nodev,\S+ - tmpfs \S+ rw,size=1024k,mode=710/);
    assert.equal(lines[2], "dd=1", "a 2 MiB file does not fit a 1 MiB tmpfs");
    assert.match(lines[3]!, /^\/sys ro,nosuid,nodev,noexec\S* sysfs$/);
    assert.match(lines[4]!, /^\/sys\/fs\/cgroup ro,nosuid,nodev,noexec\S* cgroup2$/);
    assert.match(lines[5]!, /^\/dev\/mqueue rw,nosuid,nodev,noexec\S* mqueue$/);
    assert.match(lines[6]!, /^\/tmp rw,nosuid,nodev\S* tmpfs$/);
    assert.equal(lines[7], "sys=1");
    // The container's own cgroup, holding only its own processes (sh, cat).
    assert.deepEqual(lines.slice(8, 11), ["/etc", "1", "added"]);
    assert.equal(existsSync(join(rootfs, "etc", "new")), false);
    assert.ok(lines.slice(11).filter((l) => l !== "").length >= 1, r.stdout.text());
    await sandbox!.delete(r.id);
  });

  it("resolves destinations through the image's symlinks inside the container's rootfs", async () => {
    writeFileSync(join(host, "x"), "mounted through a symlink\n");
    const r = await run(
      [
        "sh",
        "-c",
        "cat /etc/x; cat /evil/x; grep -c ' /run/moat/inside ' /proc/self/mountinfo; ls -d /run/moat/inside; ls /etc/up",
      ],
      [
        { destination: "/evil/x", type: "bind", source: join(host, "x"), options: ["bind", "ro"] },
        { destination: "/climb/inside", type: "tmpfs", source: "tmpfs", options: ["size=64k"] },
        { destination: "/../../../../etc/up", type: "tmpfs", source: "tmpfs", options: [] },
      ],
    );
    const st = await r.done;
    assert.equal(st.status, 0, r.stderr.text());
    // /evil -> /etc led to the container's /etc, /climb's "../../.." stopped at its root,
    // and ".." above the root stays at the root, as in the container's own path walk.
    assert.equal(
      r.stdout.text(),
      "mounted through a symlink\nmounted through a symlink\n1\n/run/moat/inside\n",
    );
    await sandbox!.delete(r.id);
  });

  it("refuses a mount type moat cannot make, before mounting anything", async () => {
    const id = `m${++n}`;
    await assert.rejects(
      createOnly(id, [
        { destination: "/data", type: "bind", source: host, options: ["rbind"] },
        { destination: "/mnt/nfs", type: "nfs", source: "server:/export", options: [] },
      ]),
      (e: unknown) =>
        isMoatError(e, "ENOTSUP") && /"nfs" is not supported by the vm isolation/.test(e.message),
    );
    await assert.rejects(
      createOnly(id, [
        { destination: "/m", type: "tmpfs", source: "tmpfs", options: ["size=1m", "huge=always"] },
      ]),
      (e: unknown) => isMoatError(e, "EINVAL") && /option "huge=always"/.test(e.message),
    );
    assert.deepEqual(mountsUnder(join(stateDir, "volumes")), []);
  });

  it("binds nothing where the guest planted a symlink in the volume share", async () => {
    // The share is writable from the guest: what it could do through 9p, done here directly.
    const elsewhere = join(tmp, "elsewhere");
    mkdirSync(elsewhere);
    const id = `m${++n}`;
    symlinkSync(elsewhere, join(stateDir, "volumes", id));
    await assert.rejects(
      createOnly(id, [{ destination: "/data", type: "bind", source: host, options: ["rbind"] }]),
      (e: unknown) => isMoatError(e, "EUNSAFE") && /tampering/.test(e.message),
    );
    assert.deepEqual(mountsUnder(elsewhere), []);
    assert.deepEqual(mountsUnder(join(stateDir, "volumes")), []);
    assert.equal(existsSync(join(elsewhere, "0")), false, "nothing was made through the symlink");
    unlinkSync(join(stateDir, "volumes", id));
  });

  it("releases the host binds when the guest refuses a mount", async () => {
    writeFileSync(join(host, "afile"), "a file\n");
    const id = `m${++n}`;
    // The first bind is made on the host, then the guest finds a directory where the
    // second (a file) should go.
    await assert.rejects(
      createOnly(id, [
        { destination: "/data", type: "bind", source: host, options: ["rbind"] },
        { destination: "/etc", type: "bind", source: join(host, "afile"), options: ["rbind"] },
      ]),
      (e: unknown) => e instanceof Error && /mount at \/etc: .*directory/.test(e.message),
    );
    assert.deepEqual(mountsUnder(join(stateDir, "volumes")), []);
    assert.equal(existsSync(join(stateDir, "volumes", id)), false);
    // A missing source is the caller's error, named as such.
    await assert.rejects(
      createOnly(id, [{ destination: "/d", type: "bind", source: join(host, "nope"), options: [] }]),
      (e: unknown) => isMoatError(e, "ENOENT") && /does not exist/.test(e.message),
    );
    unlinkSync(join(host, "afile"));
    // The id is free again: the failed creates left nothing behind, in the sandbox or the guest.
    await sandbox!.create({
      id,
      bundle: bundleDir,
      spec: { ...spec, process: { ...spec.process!, args: ["true"] } },
      rootfs,
      stdio: {},
    });
    await sandbox!.start(id);
    assert.equal((await sandbox!.wait(id)).status, 0);
    await sandbox!.delete(id);
  });
});
