// pause/resume of a whole sandbox from outside it. The vm isolation: SIGSTOP of QEMU freezes
// every vCPU and device of the guest at once (what QMP "stop" does, without needing the
// backend's QMP socket), and the guest notices nothing but a jump of its clock. The monitor
// owns one sandbox per container, so freezing the VM freezes exactly that container.
// The userkernel cannot be paused this way: its processes are ptrace-stopped at every system
// call and a SIGSTOP is reported to moat's kernel, which (signal delivery not built yet)
// ends the process rather than holding it.
import * as fs from "node:fs";
import { MoatError } from "../spec/errors.js";

/** The QEMU processes of this monitor's session (the monitor is a session leader). */
function qemuOfSession(): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[3]) === process.pid && comm.startsWith("qemu-system")) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
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
  const pids = qemuOfSession();
  if (pids.length === 0) throw new MoatError("ESTATE", "container not running (its VM is gone)");
  for (const p of pids) process.kill(p, "SIGSTOP");
}

export function thaw(isolation: string): void {
  if (isolation !== "vm") refuse(isolation);
  for (const p of qemuOfSession()) process.kill(p, "SIGCONT");
}
