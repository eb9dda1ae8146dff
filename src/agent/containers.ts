// Containers inside the guest. Each container's rootfs is an overlay whose lower layer
// is its directory on the read-only 9p share and whose upper layer is a tmpfs, so its
// writes stay in guest memory and never reach the host. Its processes are started
// with busybox: `unshare` gives the init process new mount, PID, UTS and IPC
// namespaces (an exec joins them with `nsenter`), and the guest's moat-creds helper
// chroots into the rootfs and takes on the config's user, groups, rlimits, umask,
// capabilities and no_new_privs. Node cannot run code between fork and exec, so these
// small tools do that part; a process with a terminal is started under the guest's
// moat-pty helper, which makes the pty its controlling terminal.
// Containers share the guest's network namespace (the pod model): they reach each other
// over loopback and share the sandbox's one NIC.
// The spec's mounts (volumes, tmpfs, sysfs, ...) are applied after the layout, in the
// spec's order (guest-mounts.ts); host files and directories arrive on a second, writable
// 9p share, so a container's writes to a read-write volume do reach the host.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { Code, TtrpcError } from "../ttrpc/messages.js";
import { applyMounts, type Deferred, VOLUME_MOUNT } from "./guest-mounts.js";
import { OutputBuffer } from "./output.js";
import {
  CREDS_HELPER,
  FRESH_HELPER,
  GUEST_NET,
  ID_PATTERN,
  type MountSpec,
  type ProcessSpec,
  PTY_HELPER,
} from "./protocol.js";
import { resolveInRoot } from "./rootpath.js";

export const BUSYBOX = "/bin/busybox";
export const SHARE_MOUNT = "/run/moat/share";
const CONTAINERS = "/run/moat/c";
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

/**
 * What every container's /dev holds besides its device nodes: the mount points for shm
 * and pts, and the usual links. Made once per guest (makeDevSkeleton), copied per container.
 */
const DEV_SKELETON = "/run/moat/dev";
/** Copied from the guest's devtmpfs: cp -a makes each as a node of the same device. */
const DEV_NODES = ["null", "zero", "full", "random", "urandom", "tty"];

// Lay out one container. Mount targets must not be symlinks the image planted: the
// guest kernel would follow them out of the rootfs. Under TCG each process the guest
// starts costs tens of ms: few commands, one shell.
const SETUP_SCRIPT = `set -e
c=$1; lower=$2; disk=$3; r=$1/rootfs
mkdir -p "$c"
mount -t tmpfs -o mode=0700 moat-container "$c"
mkdir "$c/upper" "$c/work" "$r"
if [ -n "$disk" ]; then
  mkdir "$c/lower"
  mount -t erofs -o ro,nodev "$disk" "$c/lower"
  lower=$c/lower
fi
mount -t overlay -o "lowerdir=$lower,upperdir=$c/upper,workdir=$c/work" overlay "$r"
for d in proc dev; do
  if [ -L "$r/$d" ]; then echo "/$d in the image is a symbolic link" >&2; exit 1; fi
done
mkdir -p "$r/proc" "$r/dev"
# busybox unshare --mount-proc makes its target private first, which needs a mount point.
mount --bind "$r/proc" "$r/proc"
mount -t tmpfs -o nosuid,mode=0755 dev "$r/dev"
cp -a ${DEV_NODES.map((n) => `/dev/${n}`).join(" ")} ${DEV_SKELETON}/. "$r/dev/"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$r/dev/shm"
# The guest's one devpts instance, where moat-pty allocates terminals: a process must
# find its own /dev/pts/N for tty(1) and ttyname(3) to work.
mount --bind /dev/pts "$r/dev/pts"
`;

/** The skeleton of every container's /dev (DEV_SKELETON), made with no process at all. */
function makeDevSkeleton(): void {
  mkdirSync(join(DEV_SKELETON, "shm"), { recursive: true, mode: 0o755 });
  mkdirSync(join(DEV_SKELETON, "pts"), { mode: 0o755 });
  const links: [string, string][] = [
    ["ptmx", "pts/ptmx"],
    ["fd", "/proc/self/fd"],
    ["stdin", "/proc/self/fd/0"],
    ["stdout", "/proc/self/fd/1"],
    ["stderr", "/proc/self/fd/2"],
  ];
  for (const [name, target] of links) symlinkSync(target, join(DEV_SKELETON, name));
}

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

interface ProcExit {
  status: number;
  exitCode: number;
  signal: number;
  oomKilled: boolean;
}

interface Proc {
  readonly child: ChildProcess;
  readonly stdout: OutputBuffer;
  readonly stderr: OutputBuffer;
  readonly exit: Promise<ProcExit>;
  /** How many processes lie between the spawned child and the process itself. */
  readonly depth: number;
  /** Resizes the terminal (moat-pty's control pipe); absent without a terminal. */
  readonly control?: Writable;
  /** The process itself, below the busybox wrapper that started it. */
  target?: number;
}

/** What CreateContainer asks of a container beyond its process and mounts. */
export interface ContainerOptions {
  readonly readonlyRootfs?: boolean;
  /** The cgroup's pids.max; 0 or absent: no limit. */
  readonly pidsLimit?: number;
  readonly init?: boolean;
}

interface Container {
  readonly id: string;
  readonly dir: string;
  readonly rootfs: string;
  readonly cgroup: string;
  readonly process: ProcessSpec;
  readonly hostname: string;
  /** docker's --init: moat-creds stays as the process's parent (PID 1), see moat-creds.c. */
  readonly withInit: boolean;
  deferred: Deferred;
  init?: Proc;
  readonly execs: Map<string, Proc>;
}

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(BUSYBOX, args, { env: { PATH: "/bin:/sbin:/usr/bin:/usr/sbin" } }, (err, _out, stderr) => {
      if (err)
        reject(
          new TtrpcError(
            Code.INTERNAL,
            `${args.slice(0, 2).join(" ")} failed: ${stderr.trim() || err.message}`,
          ),
        );
      else resolve();
    });
  });
}

function checkId(what: string, id: string): void {
  if (!ID_PATTERN.test(id)) {
    throw new TtrpcError(
      Code.INVALID_ARGUMENT,
      `${what} "${id}" must be 1-64 letters, digits, "_", "." or "-"`,
    );
  }
}

/** The oom_kill count of a cgroup's memory.events: every OOM kill of one of its processes. */
function oomKills(cgroup: string): number {
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(cgroup, "memory.events"), "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function oomScoreAdj(proc: ProcessSpec): number {
  const v = proc.oomScoreAdj ?? 0;
  if (!Number.isInteger(v) || v < -1000 || v > 1000)
    throw new TtrpcError(Code.INVALID_ARGUMENT, `oomScoreAdj ${v} is not an integer from -1000 to 1000`);
  return v;
}

function signalNumber(sig: NodeJS.Signals | null): number {
  return sig ? (constants.signals[sig] ?? 0) : 0;
}

/** Reseed the guest's CRNG from host entropy and take the host's clock (moat-fresh.c). */
function freshen(entropy: Uint8Array, unixTimeMs: number): Promise<void> {
  if (entropy.length < 32 || entropy.length > 512)
    throw new TtrpcError(Code.INVALID_ARGUMENT, `entropy must be 32-512 bytes, got ${entropy.length}`);
  if (!Number.isSafeInteger(unixTimeMs) || unixTimeMs <= 0)
    throw new TtrpcError(Code.INVALID_ARGUMENT, `unix_time_ms ${unixTimeMs} is not a time`);
  return new Promise((resolve, reject) => {
    const child = execFile(FRESH_HELPER, [String(unixTimeMs)], (err, _out, stderr) => {
      if (err) reject(new TtrpcError(Code.INTERNAL, `moat-fresh failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
    child.stdin!.end(entropy);
  });
}

export class Containers {
  private readonly containers = new Map<string, Container>();
  /** Names the seccomp program files written for moat-creds, one per process started. */
  private seccompFiles = 0;
  private shareMounted = false;
  private volumesMounted = false;
  private network = "none";
  private nic: Promise<void> | undefined;

  /**
   * Address and route for the NIC the host gave the guest (the same in every guest: the
   * host's side of the network tells guests apart). The agent does it as it starts, so a
   * VM template holds a guest whose network is ready; CreateSandbox does it otherwise.
   */
  configureNic(): Promise<void> {
    this.nic ??= (async () => {
      await waitForNic();
      await run([
        "sh",
        "-c",
        [
          "set -e",
          "ip link set eth0 up",
          `ip addr add ${GUEST_NET.address} dev eth0`,
          `ip route add default via ${GUEST_NET.gateway} dev eth0`,
        ].join("\n"),
      ]);
    })();
    // A failed attempt may be made again by the next caller.
    this.nic.catch(() => {
      this.nic = undefined;
    });
    return this.nic;
  }

  async createSandbox(
    shareTag: string,
    network = "",
    volumeTag = "",
    fresh?: { entropy: Uint8Array; unixTimeMs: number },
  ): Promise<void> {
    if (this.shareMounted) return;
    if (network !== "" && network !== "none" && network !== "nat")
      throw new TtrpcError(Code.INVALID_ARGUMENT, `network "${network}" is not nat or none`);
    // One shell for every step: under TCG each process the guest starts costs tens of ms.
    const steps = [
      "set -e",
      `mkdir -p ${SHARE_MOUNT} ${CONTAINERS}`,
      `mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=none "$1" ${SHARE_MOUNT}`,
    ];
    if (volumeTag !== "") {
      // Read-write: a volume's writes belong on the host. The host keeps read-only
      // volumes read-only on its side as well.
      steps.push(
        `mkdir -p ${VOLUME_MOUNT}`,
        `mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,nosuid,nodev "$2" ${VOLUME_MOUNT}`,
      );
    }
    // The guest's randomness and clock are made fresh alongside: no container can exist
    // before this call has answered, and both finish before it does.
    await Promise.all([
      fresh ? freshen(fresh.entropy, fresh.unixTimeMs) : undefined,
      network === "nat" ? this.configureNic() : undefined,
      run(["sh", "-c", steps.join("\n"), "sh", shareTag, volumeTag]),
    ]);
    makeDevSkeleton();
    if (network === "nat") this.network = "nat";
    if (volumeTag !== "") this.volumesMounted = true;
    this.shareMounted = true;
  }

  async create(
    id: string,
    proc: ProcessSpec,
    rootfsDir: string,
    hostname: string,
    mounts: readonly MountSpec[] = [],
    rootfsDisk = "",
    opts: ContainerOptions = {},
  ): Promise<void> {
    checkId("container id", id);
    const disk = rootfsDisk === "" ? "" : diskBySerial(rootfsDisk);
    if (disk === "") checkId("rootfs directory", rootfsDir);
    if (!this.shareMounted)
      throw new TtrpcError(Code.FAILED_PRECONDITION, "CreateSandbox must come before CreateContainer");
    if (!this.volumesMounted && mounts.some((m) => m.type === "bind" && m.source !== ""))
      throw new TtrpcError(Code.FAILED_PRECONDITION, "bind mounts need the sandbox's volume share");
    if (this.containers.has(id)) throw new TtrpcError(Code.ALREADY_EXISTS, `container ${id} already exists`);
    if (proc.args.length === 0)
      throw new TtrpcError(Code.INVALID_ARGUMENT, `container ${id} has no process args`);
    const dir = join(CONTAINERS, id);
    const c: Container = {
      id,
      dir,
      rootfs: join(dir, "rootfs"),
      cgroup: join(POD_CGROUP, `moat-${id}`),
      process: proc,
      hostname,
      withInit: opts.init ?? false,
      deferred: {},
      execs: new Map(),
    };
    this.containers.set(id, c);
    try {
      await run(["sh", "-c", SETUP_SCRIPT, "sh", dir, disk === "" ? join(SHARE_MOUNT, rootfsDir) : "", disk]);
      mkdirSync(c.cgroup, { recursive: true });
      // Before the mounts: a bind-mounted /etc/resolv.conf then hides this one, and the
      // write never lands on a volume.
      if (this.network === "nat") writeResolvConf(c.rootfs);
      c.deferred = await applyMounts(c, mounts, run);
      // Only the root's own mount: a bind remount changes that mount's flag, so /proc,
      // /dev, the tmpfs and volume mounts (and the /etc files docker-like runs bind in),
      // all separate mounts below it, stay writable, as with docker's --read-only.
      if (opts.readonlyRootfs) await run(["mount", "-o", "remount,bind,ro", c.rootfs]);
      if (opts.pidsLimit) {
        if (!Number.isSafeInteger(opts.pidsLimit) || opts.pidsLimit < 1)
          throw new TtrpcError(
            Code.INVALID_ARGUMENT,
            `pids limit ${opts.pidsLimit} is not a positive integer`,
          );
        writeFileSync(join(c.cgroup, "pids.max"), String(opts.pidsLimit));
      }
    } catch (e) {
      this.containers.delete(id);
      await this.unmount(c).catch(() => {});
      throw e;
    }
  }

  async start(id: string): Promise<number> {
    const c = this.get(id);
    if (c.init) throw new TtrpcError(Code.FAILED_PRECONDITION, `container ${id} was already started`);
    const argv = [
      "unshare",
      "-m",
      "-u",
      "-i",
      "-p",
      "-f",
      `--mount-proc=${c.rootfs}/proc`,
      "--",
      ...this.launch(c, c.hostname, c.process, [], c.deferred.mqueue, c.withInit),
    ];
    c.init = this.spawn(argv, c.process, c.cgroup);
    return this.targetPid(c.init);
  }

  async exec(id: string, execId: string, proc: ProcessSpec): Promise<number> {
    const c = this.get(id);
    checkId("exec id", execId);
    if (!c.init || c.init.child.exitCode !== null || c.init.child.signalCode !== null) {
      throw new TtrpcError(Code.FAILED_PRECONDITION, `container ${id} is not running`);
    }
    if (c.execs.has(execId))
      throw new TtrpcError(Code.ALREADY_EXISTS, `exec ${execId} already exists in ${id}`);
    if (proc.args.length === 0) throw new TtrpcError(Code.INVALID_ARGUMENT, `exec ${execId} has no args`);
    const initPid = await this.targetPid(c.init);
    const p = this.spawn(
      this.launch(c, "", proc, ["-t", String(initPid), "-m", "-u", "-i", "-p"]),
      proc,
      c.cgroup,
    );
    c.execs.set(execId, p);
    return this.targetPid(p);
  }

  async signal(id: string, execId: string, sig: number): Promise<void> {
    const p = this.proc(id, execId);
    if (p.child.exitCode !== null || p.child.signalCode !== null) return;
    const pid = await this.targetPid(p);
    try {
      process.kill(pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
    }
  }

  wait(id: string, execId: string): Promise<ProcExit> {
    return this.proc(id, execId).exit;
  }

  async writeStdin(id: string, execId: string, data: Uint8Array): Promise<number> {
    const stdin = this.proc(id, execId).child.stdin!;
    if (stdin.destroyed || stdin.writableEnded)
      throw new TtrpcError(Code.FAILED_PRECONDITION, "stdin is closed");
    await new Promise<void>((resolve, reject) => stdin.write(data, (e) => (e ? reject(e) : resolve())));
    return data.length;
  }

  resize(id: string, execId: string, rows: number, columns: number): void {
    const p = this.proc(id, execId);
    if (!p.control)
      throw new TtrpcError(
        Code.FAILED_PRECONDITION,
        "the process has no terminal: start it with terminal set",
      );
    if (!(rows >= 1 && rows <= 65535 && columns >= 1 && columns <= 65535))
      throw new TtrpcError(Code.INVALID_ARGUMENT, `terminal size ${rows}x${columns} is out of range`);
    if (p.control.writable) p.control.write(`${rows} ${columns}\n`);
  }

  closeStdin(id: string, execId: string): void {
    this.proc(id, execId).child.stdin!.end();
  }

  read(id: string, execId: string, which: "stdout" | "stderr", max: number, signal: AbortSignal) {
    return this.proc(id, execId)[which].read(max, signal);
  }

  /**
   * Freeze (or thaw) every process of the container, execs included: cgroup v2's freezer,
   * which stops them where they are, unlike SIGSTOP, which they could see or catch. Resolves
   * once the kernel reports the whole cgroup frozen (or thawed).
   */
  async freeze(id: string, frozen: boolean): Promise<void> {
    const c = this.get(id);
    if (!c.init) throw new TtrpcError(Code.FAILED_PRECONDITION, `container ${id} has not been started`);
    writeFileSync(join(c.cgroup, "cgroup.freeze"), frozen ? "1" : "0");
    const want = frozen ? "frozen 1" : "frozen 0";
    for (let i = 0; i < 500; i++) {
      if (readFileSync(join(c.cgroup, "cgroup.events"), "utf8").includes(want)) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new TtrpcError(
      Code.DEADLINE_EXCEEDED,
      `container ${id} did not ${frozen ? "freeze" : "thaw"} within 5 s`,
    );
  }

  stats(id: string): { memoryBytes: number; cpuNanos: number; pids: number } {
    const c = this.get(id);
    const read = (f: string) => {
      try {
        return readFileSync(join(c.cgroup, f), "utf8");
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

  async remove(id: string): Promise<void> {
    const c = this.get(id);
    for (const p of [c.init, ...c.execs.values()]) {
      if (p && p.child.exitCode === null && p.child.signalCode === null) {
        throw new TtrpcError(
          Code.FAILED_PRECONDITION,
          `container ${id} still has running processes: stop them first`,
        );
      }
    }
    await this.unmount(c);
    this.containers.delete(id);
  }

  /** Kill everything; the host powers the VM off next. */
  async destroy(): Promise<void> {
    const waits: Promise<unknown>[] = [];
    for (const c of this.containers.values()) {
      for (const p of [c.init, ...c.execs.values()]) {
        if (!p || p.child.exitCode !== null || p.child.signalCode !== null) continue;
        const pid = p.target ?? p.child.pid;
        if (pid) process.kill(pid, "SIGKILL");
        p.child.kill("SIGKILL");
        waits.push(p.exit);
      }
    }
    await Promise.all(waits);
  }

  /**
   * The command that starts a container process: the launch script (cgroup, hostname, a
   * clean environment), then for an exec nsenter into the init's namespaces, then
   * moat-creds, which chroots into the rootfs and takes on the process's identity, limits
   * and capabilities before it execs the program.
   */
  private launch(
    c: Container,
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
      const file = join(c.dir, `seccomp-${++this.seccompFiles}.bpf`);
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

  private spawn(argv: string[], proc: ProcessSpec, cgroup: string): Proc {
    // Kills counted from here on are this process's or its siblings'; one that ends by
    // SIGKILL (or, as a shell, with 137) while the count rose was the OOM killer's.
    const oomBefore = oomKills(cgroup);
    const child = proc.terminal
      ? spawn(PTY_HELPER, [String(proc.rows || 24), String(proc.columns || 80), "--", BUSYBOX, ...argv], {
          env: {},
          stdio: ["pipe", "pipe", "pipe", "pipe"],
        })
      : spawn(BUSYBOX, argv, { env: {}, stdio: ["pipe", "pipe", "pipe"] });
    child.stdin!.on("error", () => {}); // a process that exits before reading its stdin
    const control = proc.terminal ? (child.stdio[3] as Writable) : undefined;
    control?.on("error", () => {});
    const exit = new Promise<ProcExit>((resolve) => {
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
    return {
      child,
      stdout: new OutputBuffer(child.stdout!),
      stderr: new OutputBuffer(child.stderr!),
      exit,
      depth: proc.terminal ? 2 : 1,
      ...(control ? { control } : {}),
    };
  }

  /**
   * The pid under the busybox wrapper (unshare's or nsenter's child; with a terminal,
   * one level further below moat-pty), once it exists.
   */
  private async targetPid(p: Proc): Promise<number> {
    if (p.target !== undefined) return p.target;
    let pid = p.child.pid;
    if (pid === undefined) throw new TtrpcError(Code.INTERNAL, "the process could not be started");
    let level = 0;
    for (let i = 0; i < 2000; i++) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return pid;
      let children = "";
      try {
        children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
      } catch {
        return pid;
      }
      if (children !== "") {
        pid = Number(children.split(/\s+/)[0]);
        if (++level === p.depth) {
          p.target = pid;
          return pid;
        }
        continue;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new TtrpcError(Code.DEADLINE_EXCEEDED, "the process did not start within 10 s");
  }

  private async unmount(c: Container): Promise<void> {
    await run(["umount", "-l", c.rootfs]).catch(() => {});
    await run(["umount", "-l", c.dir]).catch(() => {});
    await run(["rmdir", c.dir]).catch(() => {});
    try {
      rmdirSync(c.cgroup);
    } catch {
      // already gone, or a process is still dying in it; the VM's end removes it anyway
    }
  }

  private get(id: string): Container {
    const c = this.containers.get(id);
    if (!c) throw new TtrpcError(Code.NOT_FOUND, `container ${id} does not exist in this sandbox`);
    return c;
  }

  private proc(id: string, execId: string): Proc {
    const c = this.get(id);
    if (execId === "") {
      if (!c.init) throw new TtrpcError(Code.FAILED_PRECONDITION, `container ${id} has not been started`);
      return c.init;
    }
    const p = c.execs.get(execId);
    if (!p) throw new TtrpcError(Code.NOT_FOUND, `exec ${execId} does not exist in container ${id}`);
    return p;
  }
}

/** Bring up the NIC QEMU's user-mode network gave the guest, at slirp's fixed addresses. */
/** /dev/vdX of the read-only disk whose virtio-blk serial is `serial`. */
function diskBySerial(serial: string): string {
  if (!/^[A-Za-z0-9_.-]{1,20}$/.test(serial))
    throw new TtrpcError(Code.INVALID_ARGUMENT, `disk serial "${serial}" is invalid`);
  for (const dev of readdirSync("/sys/block")) {
    try {
      if (readFileSync(`/sys/block/${dev}/serial`, "utf8").trim() === serial) return `/dev/${dev}`;
    } catch {
      // not a virtio-blk disk
    }
  }
  throw new TtrpcError(Code.NOT_FOUND, `the guest has no disk with serial ${serial}`);
}

/** Whether the host gave this guest a NIC: a virtio device of type 1 (net), bound or not yet. */
export function hasNic(): boolean {
  try {
    return readdirSync("/sys/bus/virtio/devices").some((d) => {
      try {
        return readFileSync(`/sys/bus/virtio/devices/${d}/device`, "utf8").trim() === "0x0001";
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** virtio_net was loaded by /init; its probe may still be finishing. */
async function waitForNic(): Promise<void> {
  for (let i = 0; i < 200 && !existsSync("/sys/class/net/eth0"); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  if (!existsSync("/sys/class/net/eth0"))
    throw new TtrpcError(Code.FAILED_PRECONDITION, "network nat was asked for, but the guest has no eth0");
}

/**
 * Point the container's resolver at slirp's DNS forwarder. The file is written into
 * the overlay's upper layer; its path is resolved inside the rootfs so a symlink in the
 * image cannot redirect the write into the guest.
 */
function writeResolvConf(rootfs: string): void {
  const path = resolveInRoot(rootfs, "/etc/resolv.conf");
  try {
    if (lstatSync(path).isDirectory()) return;
  } catch {
    // absent: created below
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileSync(path, `nameserver ${GUEST_NET.dns}\n`, { mode: 0o644 });
}
