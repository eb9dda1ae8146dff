// A hostile image cannot reach the host: symlinks and ".." chains that point outside the
// rootfs resolve inside it, /proc's magic links lead back into the sandbox, and writes
// land in the sandbox's overlay, never in the rootfs on the host.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { type BusyboxBundle, busyboxBundle, runIn, treeHash } from "./rootfs-run.js";

/** The magic links a hostile path may try: init's root and the caller's own root. */
const INIT_ROOT = "/proc/1/root";
/** The program runs as the sandbox's PID 1, so that /proc/1/root is its root. */
const AS_INIT = { init: true };
const SELF_ROOT = "/proc/self/root";

describe("confinement with a hostile image", () => {
  let b: BusyboxBundle;
  let secretPath = "";
  const secret = `TOP-SECRET-${randomBytes(16).toString("hex")}`;
  /** Lines of host files that must never show up inside. */
  const hostLines: string[] = [];
  let hostile: string[] = [];

  before(async () => {
    b = await busyboxBundle();
    // The secret sits next to the bundle: three ".." above rootfs/evil.
    fs.mkdirSync(path.join(b.base, "outside"));
    secretPath = path.join(b.base, "outside", "secret");
    fs.writeFileSync(secretPath, secret);
    const r = b.rootfs;
    assert.equal(path.relative(r, secretPath), "../../outside/secret");
    fs.mkdirSync(path.join(r, "evil", "dotdot"), { recursive: true });
    for (const f of ["shadow", "passwd"]) fs.rmSync(path.join(r, "etc", f), { force: true });
    fs.symlinkSync("/etc/shadow", path.join(r, "etc", "shadow"));
    fs.symlinkSync("../../../../etc/passwd", path.join(r, "etc", "passwd"));
    fs.symlinkSync(secretPath, path.join(r, "evil", "secret-abs"));
    fs.symlinkSync("../../../outside/secret", path.join(r, "evil", "secret-rel"));
    fs.symlinkSync("../../../..", path.join(r, "evil", "up"));
    fs.symlinkSync("/proc/1/root", path.join(r, "evil", "proc-root"));
    fs.symlinkSync("../..", path.join(r, "evil", "dotdot", "p"));
    fs.symlinkSync("/", path.join(r, "evil", "slash"));
    const rel = secretPath.slice(1);
    hostile = [
      "/etc/shadow",
      "/etc/passwd",
      "/evil/secret-abs",
      "/evil/secret-rel",
      "/evil/up/outside/secret",
      `/evil/up/${rel}`,
      `/evil/up/../../../../${rel}`,
      "/evil/proc-root/etc/shadow",
      "/evil/proc-root/../outside/secret",
      `/evil/proc-root/${rel}`,
      "/evil/dotdot/p/p/p/p/outside/secret",
      `/evil/dotdot/p/p/p/p/${rel}`,
      `/evil/slash/../../${rel}`,
      `${INIT_ROOT}/../../outside/secret`,
      `${SELF_ROOT}/etc/shadow`,
      `/proc/self/cwd/../../${rel}`,
      `../../outside/secret`,
      `../../../../../../${rel}`,
      secretPath,
    ];
    for (const f of ["/etc/shadow", "/etc/passwd", "/etc/hostname"]) {
      try {
        for (const l of fs.readFileSync(f, "utf8").split("\n")) if (l.length >= 8) hostLines.push(l);
      } catch {
        // A host without the file has nothing there to leak.
      }
    }
    assert.ok(hostLines.length > 0, "the host has no /etc/passwd to compare against");
  });
  after(() => b.remove());

  function assertNoLeak(out: string): void {
    assert.ok(!out.includes(secret), `the secret leaked:\n${out}`);
    for (const l of hostLines) assert.ok(!out.includes(l), `host content leaked (${l}):\n${out}`);
  }

  it("cat of every escaping path returns no host content", async () => {
    const r = await runIn(b.rootfs, ["cat", ...hostile], { ...AS_INIT, cwd: "/evil" });
    assertNoLeak(r.stdout + r.stderr);
    assert.equal(r.stdout, "");
    // Each path failed on its own (a missing file or a symlink loop), none was skipped.
    assert.equal(r.stderr.trim().split("\n").length, hostile.length, r.stderr);
    assert.match(r.stderr, /can't open '\/etc\/shadow': Too many levels of symbolic links/);
  });

  it("escaping symlinks and /proc's root links lead back to the sandbox's root", async () => {
    const top = await runIn(b.rootfs, ["ls", "-a", "/"], AS_INIT);
    const names = top.stdout
      .split(/\s+/)
      .filter((n) => n.length > 0)
      .sort();
    const expected = [...new Set([".", "..", ...fs.readdirSync(b.rootfs), "proc", "dev", "tmp"])].sort();
    assert.deepEqual(names, expected);
    for (const dir of [
      "/evil/up/",
      "/evil/proc-root/",
      "/evil/dotdot/p/",
      "/evil/dotdot/p/evil/dotdot/p/../",
      `${INIT_ROOT}/`,
      "/evil/slash/../",
    ]) {
      const r = await runIn(b.rootfs, ["ls", "-a", dir], AS_INIT);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        r.stdout
          .split(/\s+/)
          .filter((n) => n.length > 0)
          .sort(),
        expected,
        dir,
      );
      assertNoLeak(r.stdout);
    }
  });

  it("writes to / and through escaping links change nothing on the host", async () => {
    const before = treeHash(b.rootfs);
    const runs = [
      ["sh", "-c", "echo x > /etc/hostname; rm /bin/ls"],
      ["sh", "-c", "echo pwned > /evil/secret-rel; echo pwned > /evil/secret-abs; rm -rf /bin"],
      ["sh", "-c", `echo pwned > /evil/up/outside/secret; rm /evil/up/${secretPath.slice(1)}`],
      ["sh", "-c", "chmod 777 /etc; chown 1:1 /bin/busybox; mv /bin /gone; touch /etc/new"],
    ];
    for (const argv of runs) {
      const r = await runIn(b.rootfs, argv, AS_INIT);
      assertNoLeak(r.stdout + r.stderr);
    }
    // The writes really happen, inside the sandbox.
    const inside = await runIn(b.rootfs, ["sh", "-c", "echo x > /etc/hostname; cat /etc/hostname"]);
    assert.equal(inside.stdout, "x\n");
    const removed = await runIn(b.rootfs, ["rm", "-v", "/bin/ls"]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(treeHash(b.rootfs), before);
    assert.equal(fs.readFileSync(secretPath, "utf8"), secret);
  });
});
