import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SYSCALLS } from "../../src/userkernel/syscalls/table.js";
import { runUser, workdir } from "./helpers.js";

describe("unimplemented system calls", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("enosys");
  });
  after(() => w.remove());

  it("return ENOSYS to the program and are reported once by name with a count", async () => {
    assert.equal(SYSCALLS.has(300), false, "fanotify_init must stay unimplemented for this test");
    const user = await runUser(bin);
    assert.equal(user.code, 0);
    assert.match(user.stdout, /^fanotify_init -1 errno 38$/m);
    assert.match(user.stdout, /^out of range -1 errno 38$/m);
    assert.equal(user.result.unimplemented.get("fanotify_init"), 1);
    assert.equal(user.result.unimplemented.get("syscall_100000"), 1);
    const report = user.log.filter((l) => l.includes("unimplemented"));
    assert.equal(report.length, 1, user.log.join("\n"));
    assert.match(report[0]!, /fanotify_init x1/);
  });

  it("trace every syscall in debug mode", async () => {
    const user = await runUser(bin, [], { debug: true });
    assert.ok(
      user.log.some((l) => /^\[\d+\] fanotify_init\(.*\) = -ENOSYS$/.test(l)),
      user.log.join("\n"),
    );
    assert.ok(user.log.some((l) => /^\[\d+\] exit_group\(0x0/.test(l)));
  });
});
