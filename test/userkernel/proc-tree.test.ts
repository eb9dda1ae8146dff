// The CPU time of a process's children: wait4's rusage of a child that computed, and the
// spawn handle's usage(), which covers every process below the one it started (reaped ones
// included), so the container's init reports the whole container. And a fork the host cannot
// serve (no stub can start) is the program's EAGAIN.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Kernel } from "../../src/userkernel/kernel/kernel.js";
import { Collector, runNative, workdir } from "./helpers.js";

describe("CPU time of children", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin: string;
  before(async () => {
    w = await workdir();
    bin = await w.compile("burnchild");
  });
  after(() => w.remove());

  it("wait4's rusage and the handle's usage count the child that computed", async () => {
    const native = await runNative(bin);
    assert.equal(native.code, 0, native.stderr);
    const k = await Kernel.boot({ log: () => {} });
    try {
      const stdout = new Collector();
      const h = await k.spawn({ binary: bin, argv: [bin], env: [], stdout });
      const r = await h.wait();
      assert.equal(r.code, 0);
      assert.equal(stdout.text(), native.stdout);
      assert.match(stdout.text(), /at least 0\.1 s: 1/);
      // The child's computing (most of a second natively) is the process's too, though it is gone.
      assert.ok(h.usage().cpuNanos >= 0.1e9, `usage ${h.usage().cpuNanos} ns`);
    } finally {
      await k.close();
    }
  });
});

describe("a fork the host cannot serve", () => {
  it("is EAGAIN for the program, which goes on, and the kernel logs why", async () => {
    const w = await workdir();
    try {
      const bin = await w.compile("forkfail");
      const log: string[] = [];
      const k = await Kernel.boot({ log: (l) => log.push(l) });
      try {
        // The host is out of processes: every new stub fails to start.
        k.info.platform = {
          newAddressSpace: () => {
            throw new Error("fork: Resource temporarily unavailable");
          },
        };
        const stdout = new Collector();
        const r = await (await k.spawn({ binary: bin, argv: [bin], env: [], stdout })).wait();
        assert.equal(r.code, 0);
        assert.equal(stdout.text(), "fork failed: Resource temporarily unavailable\n");
        assert.ok(
          log.some((l) => l.includes("clone in pid 1 failed on the host")),
          log.join("\n"),
        );
      } finally {
        await k.close();
      }
    } finally {
      await w.remove();
    }
  });
});
