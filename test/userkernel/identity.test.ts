import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { UTS_RELEASE } from "../../src/userkernel/syscalls/identity.js";
import { runNative, runUser, workdir } from "./helpers.js";

describe("identity and time", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("identity");
  });
  after(() => w.remove());

  it("answers pid, ids, clocks, randomness and uname as moat's kernel", async () => {
    const native = await runNative(bin);
    const user = await runUser(bin, [], { hostname: "box-1" });
    assert.equal(user.code, 0, user.stderr);
    const facts = (s: string) => s.split("\n").slice(0, 9).join("\n");
    assert.equal(facts(user.stdout), facts(native.stdout));
    assert.match(user.stdout, /^pid positive 1$/m);
    assert.match(user.stdout, /^monotonic increases 1$/m);
    assert.match(user.stdout, /^sysname Linux machine x86_64$/m);
    assert.match(user.stdout, new RegExp(`^release ${UTS_RELEASE}$`, "m"));
    assert.match(user.stdout, /^version .*moat/m);
    assert.match(user.stdout, /^nodename box-1$/m);
    assert.doesNotMatch(native.stdout, /moat/);
  });
});
