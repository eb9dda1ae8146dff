// Clocks and sleeps: a static C program that reads every clock, sleeps in every way and
// passes bad arguments prints the same lines natively as under the userkernel.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { assertSameAsNative, workdir } from "./helpers.js";

describe("time syscalls", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("time");
  });
  after(() => w.remove());

  it("clocks, resolutions and sleeps behave as on Linux, errors included", async () => {
    const user = await assertSameAsNative(bin, [
      "gettime PROCESS_CPUTIME_ID: 0 valid 1",
      "clock 1 backwards: 0",
      "realtime within a second of time(): 1",
      "time bad pointer: EFAULT",
      "cputime grows with work: 1",
      "cputime stays while sleeping: 1",
      "gettime bad clock 99: EINVAL",
      "gettime bad pointer: EFAULT",
      "gettime read-only pointer: EFAULT",
      "getres 1: 0 1 ns",
      "getres bad pointer: EFAULT",
      "gettimeofday with tz: 0 tz written 1",
      "gettimeofday bad tz: EFAULT",
      "nanosleep 30ms: 0 long enough 1",
      "nanosleep early among 40 of 1.5ms: 0",
      "nanosleep early among 40 of 0.3ms: 0",
      "nanosleep nsec 1e9: EINVAL",
      "nanosleep nsec -1: EINVAL",
      "nanosleep bad pointer: EFAULT",
      "clock_nanosleep early among 40 of 1.5ms: 0",
      "clock_nanosleep absolute monotonic: 0 reached 1",
      "clock_nanosleep bad clock: EINVAL",
      "clock_nanosleep monotonic raw: EOPNOTSUPP",
      "clock_nanosleep bad pointer: EFAULT",
      "libc clock_nanosleep nsec 1e9: 1",
    ]);
    // Every clock and sleep was served, none fell through to ENOSYS.
    assert.deepEqual([...user.result.unimplemented.keys()], []);
  });
});
