// OCI bundles from images: config.json derived from the image config, rootfs as an overlay of
// cached layers or a copy, writes never reaching the image, and removal leaving nothing.
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { buildImage } from "../../src/image/build.js";
import { createBundle, removeBundle } from "../../src/image/bundle.js";
import { ImageStore } from "../../src/image/store.js";
import { isMoatError } from "../../src/spec/index.js";
import { makeTar } from "../helpers/tar.js";
import { cleanupTempDirs, mountsUnder, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

describe("bundles", () => {
  let store: ImageStore;
  before(async () => {
    store = await ImageStore.open(tempDir());
    const base = await makeTar([
      { name: "etc/", type: "directory" },
      { name: "etc/passwd", content: "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n" },
      { name: "etc/group", content: "root:x:0:\napp:x:1000:\nextra:x:2000:app\n" },
      { name: "srv/", type: "directory" },
      { name: "srv/old.txt", content: "lower" },
      { name: "srv/gone.txt", content: "deleted above" },
    ]);
    const top = await makeTar([{ name: "srv/.wh.gone.txt" }, { name: "srv/new.txt", content: "upper" }]);
    await buildImage(store, {
      layers: [base, top],
      config: {
        Entrypoint: ["/bin/app"],
        Cmd: ["--serve"],
        Env: ["PATH=/opt/bin:/usr/bin", "MODE=prod"],
        WorkingDir: "/srv",
        User: "app",
        ExposedPorts: { "8080/tcp": {} },
        StopSignal: "SIGQUIT",
      },
      name: "example.com/app:1",
    });
    // A hostile image: its /etc/passwd points outside the rootfs.
    const hostile = await makeTar([
      { name: "etc/", type: "directory" },
      { name: "etc/passwd", type: "symlink", linkname: "../../../../../../../../etc/passwd" },
    ]);
    await buildImage(store, {
      layers: [hostile],
      config: { Cmd: ["true"], User: "daemon" },
      name: "example.com/hostile:1",
    });
    const hostile2 = await makeTar([
      { name: "etc/", type: "directory" },
      { name: "etc/passwd", type: "symlink", linkname: "/../../../etc/group" },
    ]);
    await buildImage(store, {
      layers: [hostile2],
      config: { Cmd: ["true"], User: "daemon" },
      name: "example.com/hostile:2",
    });
  });

  for (const mode of ["overlay", "copy"] as const) {
    test(`${mode} rootfs: the layers merged, writes stay in the bundle, removal leaves nothing`, async () => {
      const dir = path.join(tempDir(), "b");
      const b = await createBundle(store, "example.com/app:1", dir, { rootfsMode: mode });
      assert.equal(b.mode, mode);
      assert.equal(await fs.readFile(path.join(b.rootfs, "srv/old.txt"), "utf8"), "lower");
      assert.equal(await fs.readFile(path.join(b.rootfs, "srv/new.txt"), "utf8"), "upper");
      await assert.rejects(fs.lstat(path.join(b.rootfs, "srv/gone.txt")), { code: "ENOENT" });

      // A write inside the container's rootfs never reaches the cached layers.
      await fs.writeFile(path.join(b.rootfs, "srv/old.txt"), "changed");
      const layerDirs = await fs.readdir(store.layersDir);
      assert.equal(layerDirs.length, 2);
      for (const l of layerDirs) {
        const p = path.join(store.layersDir, l, "srv/old.txt");
        const text = await fs.readFile(p, "utf8").catch(() => undefined);
        assert.notEqual(text, "changed");
      }
      if (mode === "overlay") {
        assert.equal(mountsUnder(dir).length, 1);
        assert.equal(await fs.readFile(path.join(dir, ".moat/upper/srv/old.txt"), "utf8"), "changed");
        assert.ok((await fs.readdir(store.leasesDir)).some((f) => f.startsWith("bundle-")));
        // gc keeps layers that a bundle uses even after the image's name is gone.
      }
      await removeBundle(dir);
      assert.deepEqual(mountsUnder(dir), []);
      await assert.rejects(fs.lstat(dir), { code: "ENOENT" });
      assert.deepEqual(
        (await fs.readdir(store.leasesDir)).filter((f) => f.startsWith("bundle-")),
        [],
      );
    });
  }

  test("config.json follows the image config", async () => {
    const dir = path.join(tempDir(), "b");
    const b = await createBundle(store, "example.com/app:1", dir, { env: ["MODE=dev"] });
    try {
      const spec = JSON.parse(await fs.readFile(path.join(dir, "config.json"), "utf8"));
      assert.deepEqual(b.spec, spec);
      assert.deepEqual(spec.process.args, ["/bin/app", "--serve"]);
      // docker's HOSTNAME, and HOME from the user's /etc/passwd entry (neither set by the image).
      assert.deepEqual(spec.process.env, [
        "PATH=/opt/bin:/usr/bin",
        "HOSTNAME=moat",
        "MODE=dev",
        "HOME=/home/app",
      ]);
      assert.equal(spec.process.cwd, "/srv");
      assert.deepEqual(spec.process.user, { uid: 1000, gid: 1000, additionalGids: [2000] });
      assert.equal(spec.root.path, "rootfs");
      assert.equal(spec.annotations["org.opencontainers.image.exposedPorts"], "8080/tcp");
      assert.equal(spec.annotations["org.opencontainers.image.stopSignal"], "SIGQUIT");
      const mounts = spec.mounts.map((m: { destination: string }) => m.destination);
      for (const m of ["/proc", "/dev", "/dev/pts", "/sys", "/tmp"]) assert.ok(mounts.includes(m), m);
      assert.ok(spec.linux.namespaces.some((n: { type: string }) => n.type === "pid"));
    } finally {
      await removeBundle(dir);
    }
  });

  test("moat run's overrides: mounts, capabilities, rlimits, seccomp, HOME, and the /etc files", async () => {
    const dir = path.join(tempDir(), "b");
    const vol = tempDir();
    const profile = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [] };
    await createBundle(store, "example.com/app:1", dir, {
      hostname: "box",
      env: ["HOME=/mine"],
      mounts: [
        { destination: "/data", type: "bind", source: vol, options: ["rbind", "ro"] },
        { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["size=1m"] },
        // A -v on /etc/hosts wins over moat's own file.
        { destination: "/etc/hosts", type: "bind", source: path.join(vol, "h"), options: ["rbind", "rw"] },
      ],
      capAdd: ["net_admin", "ALL"],
      capDrop: ["CAP_SYS_ADMIN"],
      rlimits: [
        { type: "RLIMIT_NOFILE", soft: 10, hard: 20 },
        { type: "RLIMIT_NPROC", soft: 5, hard: 5 },
      ],
      seccomp: profile,
      noNewPrivileges: false,
      etcFiles: { extraHosts: [{ name: "db", ip: "10.0.0.5" }], dns: ["1.1.1.1"] },
    });
    try {
      const spec = JSON.parse(await fs.readFile(path.join(dir, "config.json"), "utf8"));
      assert.ok(spec.process.env.includes("HOME=/mine"), "an explicit HOME wins");
      assert.ok(spec.process.env.includes("HOSTNAME=box"));
      const byDest = new Map(spec.mounts.map((m: { destination: string }) => [m.destination, m]));
      assert.deepEqual(byDest.get("/tmp"), {
        destination: "/tmp",
        type: "tmpfs",
        source: "tmpfs",
        options: ["size=1m"],
      });
      assert.equal(spec.mounts.filter((m: { destination: string }) => m.destination === "/tmp").length, 1);
      assert.equal((byDest.get("/etc/hosts") as { source: string }).source, path.join(vol, "h"));
      const etc = path.join(dir, ".moat", "etc");
      assert.equal((byDest.get("/etc/hostname") as { source: string }).source, path.join(etc, "hostname"));
      assert.equal(await fs.readFile(path.join(etc, "hostname"), "utf8"), "box\n");
      assert.equal(await fs.readFile(path.join(etc, "resolv.conf"), "utf8"), "nameserver 1.1.1.1\n");
      await assert.rejects(
        fs.stat(path.join(etc, "hosts")),
        { code: "ENOENT" },
        "no file for a path -v took",
      );
      const caps: string[] = spec.process.capabilities.bounding;
      assert.ok(caps.includes("CAP_NET_ADMIN") && caps.includes("CAP_SYS_TIME"), "ALL adds every capability");
      assert.ok(!caps.includes("CAP_SYS_ADMIN"), "and a drop takes one away");
      assert.deepEqual(spec.process.rlimits, [
        { type: "RLIMIT_NOFILE", soft: 10, hard: 20 },
        { type: "RLIMIT_NPROC", soft: 5, hard: 5 },
      ]);
      assert.deepEqual(spec.linux.seccomp, profile);
      assert.equal(spec.process.noNewPrivileges, false);
    } finally {
      await removeBundle(dir);
    }
    const plain = path.join(tempDir(), "b");
    await createBundle(store, "example.com/app:1", plain, {
      capDrop: ["ALL"],
      capAdd: ["CHOWN"],
      etcFiles: {},
    });
    try {
      const spec = JSON.parse(await fs.readFile(path.join(plain, "config.json"), "utf8"));
      assert.deepEqual(spec.process.capabilities.effective, ["CAP_CHOWN"]);
      const hosts = await fs.readFile(path.join(plain, ".moat", "etc", "hosts"), "utf8");
      assert.match(hosts, /^127\.0\.0\.1\tlocalhost$/m);
      assert.match(hosts, /^127\.0\.1\.1\tmoat$/m);
      assert.ok(!spec.mounts.some((m: { destination: string }) => m.destination === "/etc/resolv.conf"));
    } finally {
      await removeBundle(plain);
    }
  });

  test("a user lookup never leaves the rootfs, even through a planted symlink", async () => {
    const dir = path.join(tempDir(), "b");
    // The host has a "daemon" user and group; the image's passwd symlink must not reach them.
    for (const image of ["example.com/hostile:1", "example.com/hostile:2"]) {
      await assert.rejects(
        createBundle(store, image, dir),
        (e) => isMoatError(e, "EINVAL") && /"daemon" is not in the image's \/etc\/passwd/.test(e.message),
      );
    }
    await assert.rejects(fs.lstat(dir), { code: "ENOENT" }, "a failed bundle leaves no directory");
    assert.deepEqual(mountsUnder(path.dirname(dir)), []);
  });

  test("a non-empty target and an unknown image are refused without touching anything", async () => {
    const dir = tempDir();
    await fs.writeFile(path.join(dir, "keep.txt"), "mine");
    await assert.rejects(createBundle(store, "example.com/app:1", dir), (e) => isMoatError(e, "EEXIST"));
    assert.deepEqual(await fs.readdir(dir), ["keep.txt"]);
    await assert.rejects(
      createBundle(store, "example.com/missing:1", path.join(dir, "x")),
      (e) => isMoatError(e, "ENOENT") && /pull or load it first/.test(e.message),
    );
  });
});
