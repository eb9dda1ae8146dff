// The containers of the guest's one sandbox (pod) and the agent's operations on them: the
// table that CreateContainer fills, and each RPC's checks and order of steps. The steps
// themselves are other modules': the rootfs layout (rootfs.ts) and the spec's mounts
// (guest-mounts.ts), the cgroups (cgroups.ts), the launch command (launch.ts), the
// processes and their stdio (process.ts) and exits (exit.ts), the NIC and resolver
// (network.ts), a fresh guest (fresh.ts). Kept to the table and the order, so each of
// those has one job and this file reads as the lifecycle of a container.
import { mkdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { Code, TtrpcError } from "../ttrpc/messages.js";
import { run } from "./busybox.js";
import {
  cgroupProcesses,
  cgroupStats,
  freezeCgroup,
  POD_CGROUP,
  removeCgroup,
  setPidsLimit,
} from "./cgroups.js";
import type { ProcExit } from "./exit.js";
import { freshen } from "./fresh.js";
import { applyMounts, type Deferred } from "./guest-mounts.js";
import { launchArgv } from "./launch.js";
import { configureNic, writeResolvConf } from "./network.js";
import { type Proc, spawnProcess, targetPid } from "./process.js";
import { ID_PATTERN, type MountSpec, type ProcessSpec } from "./protocol.js";
import {
  CONTAINERS,
  diskBySerial,
  layOutRootfs,
  makeDevSkeleton,
  makeRootfsReadonly,
  mountShares,
  SHARE_MOUNT,
  unmountRootfs,
} from "./rootfs.js";

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

function checkId(what: string, id: string): void {
  if (!ID_PATTERN.test(id)) {
    throw new TtrpcError(
      Code.INVALID_ARGUMENT,
      `${what} "${id}" must be 1-64 letters, digits, "_", "." or "-"`,
    );
  }
}

export class Containers {
  private readonly containers = new Map<string, Container>();
  private shareMounted = false;
  private volumesMounted = false;
  private network = "none";

  async createSandbox(
    shareTag: string,
    network = "",
    volumeTag = "",
    fresh?: { entropy: Uint8Array; unixTimeMs: number },
  ): Promise<void> {
    if (this.shareMounted) return;
    if (network !== "" && network !== "none" && network !== "nat")
      throw new TtrpcError(Code.INVALID_ARGUMENT, `network "${network}" is not nat or none`);
    // The guest's randomness and clock are made fresh alongside: no container can exist
    // before this call has answered, and both finish before it does.
    await Promise.all([
      fresh ? freshen(fresh.entropy, fresh.unixTimeMs) : undefined,
      network === "nat" ? configureNic() : undefined,
      mountShares(shareTag, volumeTag),
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
      await layOutRootfs(dir, disk === "" ? join(SHARE_MOUNT, rootfsDir) : "", disk);
      mkdirSync(c.cgroup, { recursive: true });
      // Before the mounts: a bind-mounted /etc/resolv.conf then hides this one, and the
      // write never lands on a volume.
      if (this.network === "nat") writeResolvConf(c.rootfs);
      c.deferred = await applyMounts(c, mounts, run);
      // Only the root's own mount (rootfs.ts): the mounts below it stay writable.
      if (opts.readonlyRootfs) await makeRootfsReadonly(c.rootfs);
      if (opts.pidsLimit) setPidsLimit(c.cgroup, opts.pidsLimit);
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
      ...launchArgv(c, c.hostname, c.process, [], c.deferred.mqueue, c.withInit),
    ];
    c.init = spawnProcess(argv, c.process, c.cgroup);
    return targetPid(c.init);
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
    const initPid = await targetPid(c.init);
    const p = spawnProcess(
      launchArgv(c, "", proc, ["-t", String(initPid), "-m", "-u", "-i", "-p"]),
      proc,
      c.cgroup,
    );
    c.execs.set(execId, p);
    return targetPid(p);
  }

  async signal(id: string, execId: string, sig: number): Promise<void> {
    const p = this.proc(id, execId);
    if (p.child.exitCode !== null || p.child.signalCode !== null) return;
    const pid = await targetPid(p);
    try {
      process.kill(pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
    }
  }

  /** A signal to every process of the container (runc kill --all): its cgroup's, in its PID namespace. */
  async signalAll(id: string, sig: number): Promise<void> {
    const c = this.get(id);
    if (!c.init) throw new TtrpcError(Code.FAILED_PRECONDITION, `container ${id} has not been started`);
    const init = await targetPid(c.init);
    let ns: string;
    try {
      ns = readlinkSync(`/proc/${init}/ns/pid`);
    } catch {
      return; // The init is gone, and its namespace's processes with it.
    }
    for (const pid of cgroupProcesses(c.cgroup, ns)) {
      try {
        process.kill(pid, sig);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
      }
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
   * Freeze (or thaw) every process of the container, execs included, with its cgroup's
   * freezer (cgroups.ts); resolves once the whole cgroup is frozen (or thawed).
   */
  async freeze(id: string, frozen: boolean): Promise<void> {
    const c = this.get(id);
    if (!c.init) throw new TtrpcError(Code.FAILED_PRECONDITION, `container ${id} has not been started`);
    await freezeCgroup(c.cgroup, frozen, id);
  }

  stats(id: string): { memoryBytes: number; cpuNanos: number; pids: number } {
    const c = this.get(id);
    return cgroupStats(c.cgroup);
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

  private async unmount(c: Container): Promise<void> {
    await unmountRootfs(c.dir, c.rootfs);
    removeCgroup(c.cgroup);
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
