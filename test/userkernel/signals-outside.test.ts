// Signals from outside the container (what moat kill, the OCI kill and the shim's Kill send
// through the process handle) to a real traced program waiting in read(2): handlers run, with
// SA_RESTART the read goes on and without it fails with EINTR; SIGTSTP does not stop an
// orphaned process group (the init's, as under runc); SIGSTOP stops the process
// (nothing is read while stopped) and SIGCONT resumes it (the read restarts); a handler's
// exit code is the process's.
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Kernel } from "../../src/userkernel/kernel/kernel.js";
import { Collector, runNative, workdir } from "./helpers.js";

async function printed(out: Collector, text: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!out.text().includes(text)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${JSON.stringify(text)}; got ${out.text()}`);
    await sleep(20);
  }
}

describe("signals from outside", { timeout: 180_000 }, () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("sigoutside");
  });
  after(() => w.remove());

  it("run handlers in a blocked read (SA_RESTART or EINTR), stop and continue it, end it from a handler", async () => {
    const kernel = await Kernel.boot({ log: () => {} });
    try {
      const stdin = new PassThrough();
      const out = new Collector();
      const h = await kernel.spawn({ binary: bin, argv: [bin], env: [], stdin, stdout: out });
      await printed(out, "ready\n");
      await sleep(200); // in its read
      assert.deepEqual(h.signal(10, "SIGUSR1"), { action: "delivered" });
      await printed(out, "usr1 handler\n");
      stdin.write("one\n");
      await printed(out, "got one\n");
      assert.deepEqual(h.signal(12, "SIGUSR2"), { action: "delivered" });
      await printed(out, "read: Interrupted system call\n");

      // The container's init leads a group whose parent (the runtime) is outside its session:
      // an orphaned process group, which SIGTSTP does not stop (Linux discards it).
      h.signal(20, "SIGTSTP");
      stdin.write("zero\n");
      await printed(out, "got zero\n");

      assert.deepEqual(h.signal(19, "SIGSTOP"), { action: "delivered" });
      await sleep(200);
      stdin.write("two\n");
      await sleep(500);
      assert.ok(!out.text().includes("got two"), `a stopped process read nothing: ${out.text()}`);
      assert.deepEqual(h.signal(18, "SIGCONT"), { action: "delivered" });
      await printed(out, "got two\n");

      assert.deepEqual(h.signal(15, "SIGTERM"), { action: "delivered" });
      const r = await h.wait();
      assert.equal(r.code, 42);
      assert.equal(
        out.text(),
        "ready\nusr1 handler\ngot one\nusr2 handler\nread: Interrupted system call\ngot zero\ngot two\nterm handler\n",
      );
    } finally {
      await kernel.close();
    }
  });

  it("the same program natively reads to the end of its input", async () => {
    // The harness's check that the program itself behaves without signals.
    const o = await runNative(bin, [], Buffer.from("x\n"));
    assert.equal(o.stdout, "ready\ngot x\nend of input\n");
  });
});
