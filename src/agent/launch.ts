// The command line that starts a container process. Its processes are started with
// busybox: `unshare` gives the init process new mount, PID, UTS and IPC namespaces (an
// exec joins them with `nsenter`), and the guest's moat-creds helper chroots into the
// rootfs and takes on the config's user, groups, rlimits, umask, capabilities, seccomp
// program and no_new_privs. Node cannot run code between fork and exec, so these small
// tools do that part. Kept apart because it is where the config's process settings are
// checked and turned into arguments, and nothing here starts anything.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code, TtrpcError } from "../ttrpc/messages.js";
import { BUSYBOX } from "./busybox.js";
import { CREDS_HELPER, type ProcessSpec } from "./protocol.js";

// Runs inside the new namespaces (or, for exec, before joining them): enter the
// container's cgroup, take the process's OOM score (the agent's -997 is inherited by
// everything it starts; a container process gets the default 0, or the config's value, so
// the guest's OOM killer picks it and not the agent), name the host, mount the container's
// mqueue (an mqueue instance belongs to the IPC namespace that mounts it, so only the
// init, inside its own, can), then replace the environment wholesale.
const LAUNCH_SCRIPT = `cg=$1; h=$2; mq=$3; mqo=$4; oom=$5; shift 5
echo 0 > "$cg/cgroup.procs" || exit 125
echo "$oom" > /proc/self/oom_score_adj || exit 125
if [ -n "$h" ]; then hostname "$h" || exit 125; fi
if [ -n "$mq" ]; then ${BUSYBOX} mount -t mqueue -o "$mqo" mqueue "$mq" || exit 125; fi
exec ${BUSYBOX} env -i "$@"`;

/** What the command needs of the container it starts a process in. */
export interface LaunchTarget {
  readonly rootfs: string;
  /** The container's own tmpfs, outside its root: the seccomp program files go here. */
  readonly dir: string;
  readonly cgroup: string;
}

/** Names the seccomp program files written for moat-creds, one per process started. */
let seccompFiles = 0;

function oomScoreAdj(proc: ProcessSpec): number {
  const v = proc.oomScoreAdj ?? 0;
  if (!Number.isInteger(v) || v < -1000 || v > 1000)
    throw new TtrpcError(Code.INVALID_ARGUMENT, `oomScoreAdj ${v} is not an integer from -1000 to 1000`);
  return v;
}

/**
 * The command that starts a container process: the launch script (cgroup, hostname, a
 * clean environment), then for an exec nsenter into the init's namespaces, then
 * moat-creds, which chroots into the rootfs and takes on the process's identity, limits
 * and capabilities before it execs the program.
 */
export function launchArgv(
  c: LaunchTarget,
  hostname: string,
  proc: ProcessSpec,
  nsenter: string[],
  mqueue?: { target: string; options: string[] },
  withInit = false,
): string[] {
  const env = proc.env.filter((e) => /^[^=-][^=]*=/.test(e));
  const creds = [
    CREDS_HELPER,
    "--root",
    c.rootfs,
    "--cwd",
    proc.cwd || "/",
    "--uid",
    String(proc.uid),
    "--gid",
    String(proc.gid),
  ];
  if (proc.additionalGids?.length) creds.push("--groups", proc.additionalGids.join(","));
  if (proc.umask !== undefined && proc.umask !== null) creds.push("--umask", proc.umask.toString(8));
  for (const r of proc.rlimits ?? []) {
    if (!/^RLIMIT_[A-Z]+$/.test(r.type))
      throw new TtrpcError(Code.INVALID_ARGUMENT, `rlimit type "${r.type}" is not an RLIMIT_ name`);
    creds.push("--rlimit", `${r.type}=${r.soft}:${r.hard}`);
  }
  const caps = proc.capabilities;
  if (caps) {
    const sets = [caps.bounding, caps.effective, caps.permitted, caps.inheritable, caps.ambient];
    if (!sets.every((m) => /^[0-9a-f]{0,16}$/.test(m)))
      throw new TtrpcError(Code.INVALID_ARGUMENT, "capability sets must be 64-bit hex masks");
    creds.push("--caps", sets.map((m) => m || "0").join(":"));
  }
  if (proc.noNewPrivileges) creds.push("--no-new-privs");
  if (withInit) creds.push("--init");
  if (proc.seccomp && proc.seccomp.length > 0) {
    if (proc.seccomp.length % 8 !== 0 || proc.seccomp.length > 4096 * 8)
      throw new TtrpcError(Code.INVALID_ARGUMENT, "the seccomp program is not a list of BPF instructions");
    // Outside the container's root (moat-creds reads it before the chroot), on the
    // container's own tmpfs.
    const file = join(c.dir, `seccomp-${++seccompFiles}.bpf`);
    writeFileSync(file, proc.seccomp, { mode: 0o600 });
    creds.push("--seccomp", file);
  }
  return [
    BUSYBOX,
    "sh",
    "-c",
    LAUNCH_SCRIPT,
    "sh",
    c.cgroup,
    hostname,
    mqueue?.target ?? "",
    mqueue?.options.join(",") || "defaults",
    String(oomScoreAdj(proc)),
    ...env,
    ...(nsenter.length > 0 ? [BUSYBOX, "nsenter", ...nsenter, "--"] : []),
    ...creds,
    "--",
    ...proc.args,
  ];
}
