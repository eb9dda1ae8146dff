// The x86-64 signal frame a handler gets under the userkernel, field by field, against the
// host kernel's: ucontext (flags, link, sigcontext registers in order, trap number, masks),
// siginfo's place, the xsave FP area with Linux's magics (64-byte aligned, above the frame),
// the red zone skipped, rsp = 8 (mod 16) at entry, the return address being sa_restorer, the
// handler's clean FP state; and what rt_sigreturn restores (a register, an xmm register and
// the resume address the handler edited; the mask).
import { after, before, describe, it } from "node:test";
import { assertSameAsNative, workdir } from "./helpers.js";

describe("signal frames", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("sigframe");
  });
  after(() => w.remove());

  it("a handler sees the frame the host kernel builds, and rt_sigreturn restores what it edited", async () => {
    await assertSameAsNative(bin, [
      "handler ran 1; after rt_sigreturn: rbx 5151, xmm1 7777777777777777, mxcsr 7f80",
      "mask after: usr2 1 ill 0 usr1 0",
    ]);
  });
});
