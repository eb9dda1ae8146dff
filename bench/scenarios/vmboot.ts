// 8. VM boot to first output, against the floor: the same QEMU and guest kernel booting a
// busybox-only initramfs that powers off at once.

import { moatProblem } from "../lib/subjects.js";
import type { Scenario } from "../lib/types.js";

export const vmboot: Scenario = {
  id: "vmboot",
  title: "VM boot to first output vs the bare QEMU floor",
  async run() {
    const problem = await moatProblem("vm");
    return {
      id: this.id,
      title: this.title,
      skipped: problem ?? "the bare-QEMU floor comparison is not written yet",
    };
  },
};
