// pause/resume of a whole sandbox from outside it. The vm isolation: SIGSTOP of QEMU freezes
// every vCPU and device of the guest at once (what QMP "stop" does, without needing the
// backend's QMP socket), and the guest notices nothing but a jump of its clock. The monitor
// owns one sandbox per container, so freezing the VM freezes exactly that container.
// The userkernel cannot be paused this way: its processes are ptrace-stopped at every system
// call and a SIGSTOP is reported to moat's kernel, which (signal delivery not built yet)
// ends the process rather than holding it.
import * as fs from "node:fs";
import { MoatError } from "../spec/errors.js";
import { descendantsOf } from "../sys/pids.js";

/**
 * The QEMU processes this monitor started: its descendants (QEMU leads a session of its own,
 * so that a terminal's signals miss it, and is found by parentage instead).
 */
function qemuOfMonitor(): number[] {
  return descendantsOf(process.pid)
    .map((d) => d.pid)
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("qemu-system");
      } catch {
        return false; // gone meanwhile
      }
    });
}

function refuse(isolation: string): never {
  throw new MoatError(
    "ENOTSUP",
    isolation === "userkernel"
      ? "pause is not supported by the userkernel isolation: its processes stop at every system call under moat's ptrace kernel, which cannot hold a stopped process yet (a SIGSTOP would end it); use the vm isolation to pause containers"
      : `pause is not supported by the ${isolation} isolation`,
  );
}

/** Freeze the sandbox; throws ENOTSUP with the reason where the isolation cannot. */
export function freeze(isolation: string): void {
  if (isolation !== "vm") refuse(isolation);
  const pids = qemuOfMonitor();
  if (pids.length === 0) throw new MoatError("ESTATE", "container not running (its VM is gone)");
  for (const p of pids) process.kill(p, "SIGSTOP");
}

export function thaw(isolation: string): void {
  if (isolation !== "vm") refuse(isolation);
  for (const p of qemuOfMonitor()) process.kill(p, "SIGCONT");
}
