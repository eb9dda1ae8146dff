// Scenarios that need a sandbox backend to measure anything beyond the baseline. Each names
// what it waits for; they become real measurements as the backends are wired into sandboxes.
import { moatProblem } from "../lib/subjects.js";
import type { Scenario } from "../lib/types.js";

function pending(id: string, title: string, needs: string): Scenario {
  return {
    id,
    title,
    async run() {
      const why = [await moatProblem("userkernel"), await moatProblem("vm")].filter(Boolean).join("; ");
      return { id, title, skipped: `${needs} (${why || "not written yet"})` };
    },
  };
}

export const fileRead = pending(
  "fileread",
  "File read: 64 MiB from the image",
  "needs a moat isolation that runs containers",
);
export const forkExec = pending(
  "forkexec",
  "Process creation: fork+exec+wait of /bin/true, 200 times",
  "needs a moat isolation that runs containers",
);
export const python = pending(
  "python",
  "`python3 -c pass` start-up",
  "needs a moat isolation that runs containers",
);
export const memory = pending(
  "memory",
  "Memory: PSS of one idle sandbox",
  "needs a moat isolation that runs containers",
);
export const density = pending(
  "density",
  "Density: idle sandboxes up to 20",
  "needs a moat isolation that runs containers",
);
