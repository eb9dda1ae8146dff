// How a container process ended, as WaitProcess reports it: the shell-style status, the
// exit code or signal, and whether the OOM killer ended it. Kept apart because telling
// an OOM kill from any other SIGKILL takes the cgroup's count from before the process
// started, which only the spawning side can take (process.ts).
import type { ChildProcess } from "node:child_process";
import { constants } from "node:os";
import { oomKills } from "./cgroups.js";

export interface ProcExit {
  status: number;
  exitCode: number;
  signal: number;
  oomKilled: boolean;
}

function signalNumber(sig: NodeJS.Signals | null): number {
  return sig ? (constants.signals[sig] ?? 0) : 0;
}

/**
 * The exit of `child`, started in `cgroup` when its oom_kill count was `oomBefore`. Kills
 * counted from there on are this process's or its siblings'; one that ends by SIGKILL (or,
 * as a shell, with 137) while the count rose was the OOM killer's.
 */
export function exitOf(child: ChildProcess, cgroup: string, oomBefore: number): Promise<ProcExit> {
  return new Promise<ProcExit>((resolve) => {
    child.once("exit", (code, sig) => {
      const n = signalNumber(sig);
      const status = sig ? 128 + n : (code ?? 255);
      const oomKilled = status === 128 + constants.signals.SIGKILL && oomKills(cgroup) > oomBefore;
      resolve(
        sig
          ? { status, exitCode: 0, signal: n, oomKilled }
          : { status, exitCode: code ?? 255, signal: 0, oomKilled },
      );
    });
    child.once("error", () => resolve({ status: 127, exitCode: 127, signal: 0, oomKilled: false }));
  });
}
