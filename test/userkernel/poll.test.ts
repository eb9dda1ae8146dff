// Waiting on descriptors: a static C program polls and selects on pipes and stdin and
// prints the same lines natively as under the userkernel.
import { after, before, describe, it } from "node:test";
import { assertSameAsNative, workdir } from "./helpers.js";

describe("poll and select", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("poll");
  });
  after(() => w.remove());

  it("readiness, hang-up, timeouts and errors behave as on Linux", async () => {
    await assertSameAsNative(
      bin,
      [
        "empty pipe: 1 in=0 out=4 neg=0",
        "after write: 2 in=1 out=4",
        "timeout 60ms: 0 waited enough 1",
        "writer closed: 1 in=10",
        "closed fd: 1 revents=20",
        "bad pointer: EFAULT",
        "ppoll nsec 2e9: EINVAL",
        "select: 1 read=0 write=1",
        "pselect after write: 1 read=1",
        "select closed fd: EBADF",
        "select negative: EINVAL",
        "select usec 1e6: ok waited a second 1",
        "stdin: 1 in=1 read 14",
      ],
      "from the host\n",
    );
  });
});
