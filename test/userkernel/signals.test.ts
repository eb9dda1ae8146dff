// The x86-64 signal frame a handler gets under the userkernel, field by field, against the
// host kernel's: ucontext (flags, link, sigcontext registers in order, trap number, masks),
// siginfo's place, the xsave FP area with Linux's magics (64-byte aligned, above the frame),
// the red zone skipped, rsp = 8 (mod 16) at entry, the return address being sa_restorer, the
// handler's clean FP state; and what rt_sigreturn restores (a register, an xmm register and
// the resume address the handler edited; the mask). Then waiting for signals (sigwait.c):
// rt_sigtimedwait with siginfo and queued values, sigsuspend and ppoll with a mask, and the
// errors of kill, tgkill and tkill.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { assertSameAsNative, runUser, workdir } from "./helpers.js";

describe("signal frames and waits", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  let wait = "";
  let abort = "";
  before(async () => {
    w = await workdir();
    [bin, wait, abort] = await Promise.all([w.compile("sigframe"), w.compile("sigwait"), w.compile("abort")]);
  });
  after(() => w.remove());

  it("a handler sees the frame the host kernel builds, and rt_sigreturn restores what it edited", async () => {
    await assertSameAsNative(bin, [
      "handler ran 1; after rt_sigreturn: rbx 5151, xmm1 7777777777777777, mxcsr 7f80",
      "mask after: usr2 1 ill 0 usr1 0",
    ]);
  });

  it("rt_sigtimedwait, sigsuspend and ppoll with a mask, kill's errors: as natively", async () => {
    await assertSameAsNative(wait, [
      "queued 2: signal RTMIN 1, SI_QUEUE 1, value 30",
      "50 ms timeout: -1 Resource temporarily unavailable, waited it 1",
      "sigsuspend with a pending signal: -1 Interrupted system call, handler ran 1, usr1 blocked again 1",
      "ppoll letting it in: -1 Interrupted system call, at once 1, handler ran 1, usr1 blocked again 1",
      "pending at the end: usr1 0 rtmin 0",
      "RLIMIT_SIGPENDING 5: sigqueue stopped with EAGAIN 1, at most 5 queued 1, a kill over the limit added none 1",
    ]);
  });

  it("a core signal's death has the core bit only where RLIMIT_CORE lets Linux dump one", async () => {
    const plain = await runUser(abort);
    assert.equal(plain.signal, "SIGABRT");
    assert.equal(plain.result.waitStatus, 6, "RLIMIT_CORE 0 (the default): no core bit");
    const core = await runUser(abort, ["core"]);
    assert.equal(core.signal, "SIGABRT");
    assert.equal(core.result.waitStatus, 6 | 0x80, "RLIMIT_CORE raised: WCOREDUMP");
  });
});
