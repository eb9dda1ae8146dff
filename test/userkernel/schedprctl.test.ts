// prctl, affinity, scheduling parameters, nice values, getcpu, rseq, membarrier and ioprio:
// a static C program calls each as busybox and python do and prints the same natively and
// under the userkernel.
import { after, before, describe, it } from "node:test";
import { assertSameAsNative, workdir } from "./helpers.js";

describe("userkernel prctl and scheduling calls", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("schedprctl");
  });
  after(() => w.remove());

  it("answer as Linux does", async () => {
    await assertSameAsNative(bin, [
      "name: a-very-long-thr",
      "pdeathsig: 15",
      "set pdeathsig 99: EINVAL",
      "subreaper: 1",
      "get no_new_privs: 1",
      "get timerslack: 1000",
      "get timerslack: 50000",
      "bad option: EINVAL",
      "getaffinity size: longs, cpus: some",
      "affinity count is nproc: yes",
      "getaffinity len 4: EINVAL",
      "after set: 1 cpu(s), the one set: yes",
      "getcpu on the set cpu: yes, node 0",
      "setaffinity empty: EINVAL",
      "getparam other pid: ESRCH",
      "max fifo: 99",
      "max bad: EINVAL",
      "getscheduler: 3",
      "setscheduler batch prio 3: EINVAL",
      "attr: size 56 policy 0 nice 0",
      "attr: policy 3 nice 4",
      "size told: 56",
      "setattr newer struct, set tail: E2BIG",
      "getpriority raw: 20",
      "getpriority: 19",
      "getpriority bad which: EINVAL",
      "rseq bad: refused",
      "query: private expedited yes, register yes, global yes",
      "private expedited unregistered: EPERM",
      "private expedited: 0",
      "bad cmd: EINVAL",
      "ioprio get: 16387",
      "ioprio set bad class: EINVAL",
    ]);
  });
});
