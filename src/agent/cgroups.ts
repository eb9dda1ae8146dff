// The guest's cgroups: the pod cgroup every container sits in, and what the agent reads
// and writes in one container's cgroup (pids.max, the freezer, the OOM kill count, the
// usage StatsContainer reports). Kept apart from the containers' table because it is the
// only part that speaks cgroup v2's files, and its limits must hold whatever runs inside.
import { mkdirSync, readFileSync, readlinkSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code, TtrpcError } from "../ttrpc/messages.js";

/**
 * Every container's cgroup sits in one pod cgroup (main.ts's setupPodCgroup), whose memory
 * limit leaves the agent and the guest kernel a reserve.
 */
export const POD_CGROUP = "/sys/fs/cgroup/moat-pod";
/** What the pod cgroup leaves the guest kernel and the agent, MiB. */
const AGENT_RESERVE_MIB = 48;

/**
 * The pod cgroup: the containers' controllers, and a memory.max below the guest's RAM. A
 * container that fills its memory (tmpfs pages too, which killing the writer does not free)
 * then meets the memory cgroup's OOM killer inside the pod, and the guest-wide OOM killer,
 * which might pick the agent, has no cause to run.
 */
export function setupPodCgroup(log: (msg: string) => void): void {
  try {
    mkdirSync(POD_CGROUP, { recursive: true });
    writeFileSync(`${POD_CGROUP}/cgroup.subtree_control`, "+cpu +memory +pids");
    const kib = Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0);
    const totalMiB = Math.floor(kib / 1024);
    const limitMiB = Math.max(totalMiB - AGENT_RESERVE_MIB, Math.floor(totalMiB / 2));
    writeFileSync(`${POD_CGROUP}/memory.max`, String(limitMiB * 1024 * 1024));
  } catch (e) {
    log(`cannot set up the pod cgroup: ${(e as Error).message}`);
  }
}

/** The cgroup's pids.max: the config's pids limit, refused unless a positive integer. */
export function setPidsLimit(cgroup: string, pidsLimit: number): void {
  if (!Number.isSafeInteger(pidsLimit) || pidsLimit < 1)
    throw new TtrpcError(Code.INVALID_ARGUMENT, `pids limit ${pidsLimit} is not a positive integer`);
  writeFileSync(join(cgroup, "pids.max"), String(pidsLimit));
}

/** The oom_kill count of a cgroup's memory.events: every OOM kill of one of its processes. */
export function oomKills(cgroup: string): number {
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(cgroup, "memory.events"), "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Freeze (or thaw) every process of the cgroup: cgroup v2's freezer, which stops them where
 * they are, unlike SIGSTOP, which they could see or catch. Resolves once the kernel reports
 * the whole cgroup frozen (or thawed); `id` names the container in the error.
 */
export async function freezeCgroup(cgroup: string, frozen: boolean, id: string): Promise<void> {
  writeFileSync(join(cgroup, "cgroup.freeze"), frozen ? "1" : "0");
  const want = frozen ? "frozen 1" : "frozen 0";
  for (let i = 0; i < 500; i++) {
    if (readFileSync(join(cgroup, "cgroup.events"), "utf8").includes(want)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new TtrpcError(
    Code.DEADLINE_EXCEEDED,
    `container ${id} did not ${frozen ? "freeze" : "thaw"} within 5 s`,
  );
}

/** What StatsContainer reports: the cgroup's memory, CPU time and process count. */
export function cgroupStats(cgroup: string): { memoryBytes: number; cpuNanos: number; pids: number } {
  const read = (f: string) => {
    try {
      return readFileSync(join(cgroup, f), "utf8");
    } catch {
      return "";
    }
  };
  const usec = /^usage_usec (\d+)$/m.exec(read("cpu.stat"));
  return {
    memoryBytes: Number(read("memory.current").trim() || 0),
    cpuNanos: usec ? Number(usec[1]) * 1000 : 0,
    pids: Number(read("pids.current").trim() || 0),
  };
}

export function removeCgroup(cgroup: string): void {
  try {
    rmdirSync(cgroup);
  } catch {
    // already gone, or a process is still dying in it; the VM's end removes it anyway
  }
}

/**
 * The processes of `cgroup` that live in the PID namespace `pidNs` (a /proc/<pid>/ns/pid
 * link): the container's own, without the launch tools that joined the cgroup but stay in
 * the agent's namespace (an exec's nsenter, which waits for its child).
 */
export function cgroupProcesses(cgroup: string, pidNs: string): number[] {
  const out: number[] = [];
  let pids: string[];
  try {
    pids = readFileSync(join(cgroup, "cgroup.procs"), "utf8").split("\n").filter(Boolean);
  } catch {
    return out;
  }
  for (const p of pids) {
    try {
      if (readlinkSync(`/proc/${p}/ns/pid`) === pidNs) out.push(Number(p));
    } catch {
      // It ended meanwhile.
    }
  }
  return out;
}
