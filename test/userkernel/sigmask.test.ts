// Signal state without delivery: masks, dispositions, the alternate stack and the pending
// set, errors included, as a static C program sees them natively and under the userkernel.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { assertSameAsNative, workdir } from "./helpers.js";

describe("signal masks and dispositions", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("sigmask");
  });
  after(() => w.remove());

  it("prints the same as natively, errors included", async () => {
    const user = await assertSameAsNative(bin, [
      "block kill stop hup: 0 mask 0x4003",
      "setmask all: 0 mask 0xfffffffffffbfeff",
      "setmask quit, old into the same buffer: 0 old 0xfffffffffffbfeff mask 0x4",
      "bad how: EINVAL mask 0x4",
      "bad how without a set: 0",
      "sigsetsize 4: EINVAL",
      "bad set: EFAULT",
      "bad old set: EFAULT mask 0x1004",
      "read back usr1: handler 1 flags 0x54000000 int 1 kill 0 term 0 restorer set 1",
      "raw usr1: 0 handler 1 flags 0x54000000 restorer same 1 mask 0x2",
      "libc sigaction kill: EINVAL",
      "raw stop: EINVAL",
      "raw signal 0: EINVAL",
      "raw signal 65: EINVAL",
      "raw unknown flags: 0 flags 0x4",
      "raw sigsetsize 4: EINVAL",
      "raw bad act for signal 0: EFAULT",
      "raw bad old act: EFAULT installed 1",
      "sigaltstack initial: 0 old sp -1 flags 2 size 0",
      "sigaltstack get: 0 old sp 0 flags -2147483648 size 8192",
      "sigaltstack flags 4: EINVAL old untouched 1",
      "sigaltstack size 1024: ENOMEM old untouched 1",
      "sigaltstack from the stack: 0 flags 1",
      "sigaltstack change from the stack: EPERM",
      "sigaltstack from an auto-disarming stack: 0 flags -2147483648",
      "sigaltstack get: 0 old sp -1 flags 2 size 0",
      "sigaltstack bad old: EFAULT",
      "pending: 0 set 0",
      "pending size 16: EINVAL",
      "pending bad pointer: EFAULT",
      "pending after raise while blocked: 0x800",
      "pending after ignoring: 0",
      "still running",
    ]);
    assert.deepEqual([...user.result.unimplemented.keys()], []);
  });
});
