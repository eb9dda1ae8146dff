// kernel/wait.ts on its own: what wakes a block and what does not, deadlines, interruption,
// and that a finished block leaves nothing registered and no timer armed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Blockable, block, WaitQueue } from "../../src/userkernel/kernel/wait.js";

const POLLIN = 0x1;
const POLLOUT = 0x4;

function task(): Blockable & { exitStatus: unknown } {
  return { blockedOn: undefined, exitStatus: undefined };
}

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("wait queues and block", () => {
  it("wakes only on the events a waiter asked for, on any of its queues, and unregisters", async () => {
    const t = task();
    const a = new WaitQueue();
    const b = new WaitQueue();
    let result: string | undefined;
    const p = block(t, [
      [a, POLLIN],
      [b, POLLOUT],
    ]).then((r) => {
      result = r;
    });
    assert.equal(t.blockedOn?.reason, "wait");
    assert.equal(a.size + b.size, 2);
    a.notify(POLLOUT);
    b.notify(POLLIN);
    await new Promise((r) => setImmediate(r));
    assert.equal(result, undefined, "events nobody asked for woke the block");
    b.notify(POLLOUT | POLLIN);
    await p;
    assert.equal(result, "woken");
    assert.equal(t.blockedOn, undefined);
    assert.equal(a.size + b.size, 0, "the block left its registrations behind");
  });

  it("times out at the deadline with one timer, cleared when woken earlier", async () => {
    const t = task();
    const before = timers();
    const start = process.hrtime.bigint();
    assert.equal(await block(t, [], start + 30_000_000n), "timeout");
    assert.ok(process.hrtime.bigint() - start >= 30_000_000n, "woke before the deadline");
    const q = new WaitQueue();
    const p = block(t, [[q, POLLIN]], process.hrtime.bigint() + 60_000_000_000n);
    assert.equal(timers(), before + 1);
    q.notify(POLLIN);
    assert.equal(await p, "woken");
    assert.equal(timers(), before, "the deadline's timer outlived the block");
    assert.equal(await block(t, [], process.hrtime.bigint() - 1n), "timeout", "a past deadline");
  });

  it("is interrupted by the task's interrupt, and a dying task does not sleep at all", async () => {
    const t = task();
    const q = new WaitQueue();
    const p = block(t, [[q, POLLIN]], undefined, "read");
    assert.equal(t.blockedOn?.reason, "read");
    t.blockedOn?.interrupt();
    assert.equal(await p, "interrupted");
    assert.equal(q.size, 0);
    t.exitStatus = { signal: 9 };
    assert.equal(await block(t, [[q, POLLIN]]), "interrupted");
    assert.equal(q.size, 0);
  });
});
