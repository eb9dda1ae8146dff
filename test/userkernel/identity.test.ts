import assert from "node:assert/strict";
import { chmod } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { UTS_RELEASE } from "../../src/userkernel/syscalls/identity.js";
import { runNative, runUser, workdir } from "./helpers.js";

/** The lines that name the kernel that answered; all others hold on any Linux. */
const KERNEL_LINES = /^(release|version|nodename) /;

describe("identity and time", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("identity");
    // The unprivileged run must reach the program.
    await chmod(w.dir, 0o755);
  });
  after(() => w.remove());

  it("capget reports what the kernel enforces (all for euid 0, none otherwise); capset keeps them or refuses", async () => {
    const caps = await w.compile("caps");
    const user = await runUser(caps);
    assert.equal(user.code, 0, user.stderr);
    assert.equal(
      user.stdout,
      [
        "probe: 0, version now 20080522",
        "bad version with data: EINVAL, version now 20080522",
        "root: eff 000001ffffffffff prm 000001ffffffffff inh 0000000000000000",
        "v1: eff ffffffff",
        "capget of no process: ESRCH",
        "capset the same sets: 0",
        "capset dropping one: EPERM",
        "capbset read 21: 1, 41: EINVAL",
        "capbset drop: EPERM",
        "ambient is set: 0, raise: EPERM, clear: 0",
        "uid 1000: eff 0000000000000000 prm 0000000000000000 inh 0000000000000000",
        "uid 1000 capset nothing: 0",
        "uid 1000 capset adding one: EPERM",
        "a child's: eff ffffffff",
        "capset of another process: EPERM",
        "",
      ].join("\n"),
    );
  });

  it("answers pid, ids, groups, clocks, randomness and uname as moat's kernel", async () => {
    const native = await runNative(bin);
    const user = await runUser(bin, [], { hostname: "box-1" });
    assert.equal(native.code, 0, native.stderr);
    assert.equal(user.code, 0, user.stderr);
    const facts = (s: string) =>
      s
        .split("\n")
        .filter((l) => !KERNEL_LINES.test(l))
        .join("\n");
    assert.equal(facts(user.stdout), facts(native.stdout));
    for (const line of [
      "pid positive 1",
      "monotonic increases 1",
      "tid is pid 1",
      "ppid differs from pid 1",
      "getgroups -1: EINVAL",
      "setgroups 300 20 100: 0",
      "getgroups 3: 20 100 300",
      "getgroups too small: EINVAL",
      "setgroups bad pointer: EFAULT",
      "setgroups gid -1: EINVAL",
      "setgroups 65537: EINVAL",
      "setgroups none: 0 count 0",
      "uname bad pointer: EFAULT",
      "sysname Linux machine x86_64",
    ])
      assert.ok(user.stdout.includes(`${line}\n`), `missing "${line}" in:\n${user.stdout}`);
    assert.match(user.stdout, new RegExp(`^release ${UTS_RELEASE}$`, "m"));
    assert.match(user.stdout, /^version .*moat/m);
    assert.match(user.stdout, /^nodename box-1$/m);
    assert.doesNotMatch(native.stdout, /moat/);
    assert.deepEqual([...user.result.unimplemented.keys()], []);
  });

  it("refuses setgroups to an unprivileged user, as Linux does", async () => {
    const native = await runNative(bin, ["creds"], undefined, { uid: 1000, gid: 1000 });
    const user = await runUser(bin, ["creds"], { uid: 1000, gid: 1000 });
    assert.equal(native.code, 0, native.stderr);
    assert.equal(user.code, 0, user.stderr);
    assert.equal(user.stdout, native.stdout);
    for (const line of ["uid 1000 gid 1000", "setgroups 300 20 100: EPERM", "setgroups -1: EPERM"])
      assert.ok(user.stdout.includes(`${line}\n`), `missing "${line}" in:\n${user.stdout}`);
  });
});
