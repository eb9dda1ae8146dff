// The vm isolation as a Sandbox backend: one QEMU microvm per sandbox, its containers run
// by the guest agent. Rootfs sharing: each sandbox boots with ONE read-only 9p share of
// a host directory (stateDir/share); create() bind-mounts the container's bundle rootfs
// read-only into it under the container's id, and the agent layers a tmpfs-backed
// overlay on top inside the guest. So containers can be added to a running VM without
// hot-plugging devices, and nothing a container writes to its rootfs reaches the host
// (QEMU refuses writes to the share as well).
// Volumes: the spec's bind mounts of host files and directories go through a second 9p
// share, writable (stateDir/volumes): create() bind-mounts each source there under
// <container id>/<n> (read-only on the host too when the mount says "ro") and the agent
// binds it at its destination inside the container. tmpfs, sysfs, mqueue and cgroup
// mounts are made by the guest; a mount type moat cannot make is an error, not ignored.
// Every bind lives under stateDir, so whoever cleans up a killed sandbox finds them.
// Network: "nat" (the default) gives the VM one virtio NIC on a per-VM passt, behind
// moat's frame filter, with ports forwarded from the host's loopback; the host's own
// loopback services stay out of reach (see hypervisor.ts). "none" gives it no NIC at all.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, realpathSync } from "node:fs";
import { mkdir, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { planMounts } from "../agent/mounts.js";
import type { ProcessSpec } from "../agent/protocol.js";
import { ID_PATTERN } from "../agent/protocol.js";
import { ContainerTable, procOf } from "../sandbox/containers.js";
import type { Sandbox, SandboxBackend } from "../sandbox/sandbox.js";
import { compileSeccomp, type SeccompProfile } from "../sandbox/seccomp.js";
import { type Signal, SignalNumbers, signalName } from "../sandbox/signals.js";
import type {
  Availability,
  ContainerConfig,
  ContainerStats,
  ExecConfig,
  ExitStatus,
  SandboxConfig,
  Stdio,
} from "../sandbox/types.js";
import { capabilityMask } from "../spec/capabilities.js";
import {
  type HostConfig,
  readHostConfig,
  vmRootfsMode,
  vmTemplateEnabled,
  vmTemplateMaxAge,
} from "../spec/config.js";
import { MoatError } from "../spec/errors.js";
import { INIT_ANNOTATION, type Process } from "../spec/runtime.js";
import { MNT_DETACH, MS_BIND, MS_RDONLY, MS_REC, MS_REMOUNT, mount, umount } from "../sys/fs.js";
import { unmountAndRemove } from "../sys/mounts.js";
import type { AgentClient } from "./agent-client.js";
import { ensureAssets } from "./assets/build.js";
import { assetDir, readManifest } from "./assets/manifest.js";
import { type BootedGuest, bootGuest, chooseGuestAccel } from "./guest.js";
import type { RunningVm, UserNetConfig } from "./hypervisor/hypervisor.js";
import { PASST_BINARY, passtMissing } from "./hypervisor/passt.js";
import { QEMU_BINARY } from "./hypervisor/qemu.js";
import { checkHostPortsFree } from "./ports.js";
import { buildRootfsImage } from "./rootfs-image.js";
import { ContainerVolumes, pinVolumeRoot } from "./volumes.js";

const SHARE_TAG = "moatshare";
const VOLUME_TAG = "moatvolumes";
const READ_CHUNK = 64 * 1024;

export class VmBackend implements SandboxBackend {
  readonly isolation = "vm" as const;

  async availability(): Promise<Availability> {
    const q = spawnSync(QEMU_BINARY, ["--version"], { encoding: "utf8" });
    if (q.error || q.status !== 0) {
      return { available: false, reason: `${QEMU_BINARY} cannot run: install the qemu-system-x86 package` };
    }
    const passt = spawnSync(PASST_BINARY, ["--version"], { encoding: "utf8" });
    if (passt.error || passt.status !== 0) {
      // Without passt only network "none" could work; a default that fails is worse.
      return { available: false, reason: passtMissing().message };
    }
    try {
      // Read what is cached, build nothing: availability is asked on every `moat run`.
      const dir = assetDir();
      const m = await readManifest(dir);
      if (!m) {
        return {
          available: true,
          reason: "QEMU found; the guest kernel and agent image are built on first use (or by moat setup)",
        };
      }
      const accel = await chooseGuestAccel({
        dir,
        kernel: join(dir, m.kernel),
        initrd: join(dir, m.initrd),
        image: join(dir, m.image),
      });
      return { available: true, reason: `${accel.accel}: ${accel.reason}`, hardware: accel.accel === "kvm" };
    } catch (e) {
      return { available: false, reason: `the guest assets cannot be built: ${(e as Error).message}` };
    }
  }

  async prepare(onStep: (step: string) => void): Promise<Availability> {
    const assets = await ensureAssets({ progress: onStep });
    onStep("probing hardware acceleration (a KVM boot, cached per host kernel)");
    const accel = await chooseGuestAccel(assets);
    return { available: true, reason: `${accel.accel}: ${accel.reason}`, hardware: accel.accel === "kvm" };
  }

  async createSandbox(config: SandboxConfig): Promise<Sandbox> {
    return VmSandbox.boot(config);
  }
}

interface RootfsDisk {
  /** The rootfs directory the image was made from (its real path). */
  readonly rootfs: string;
  readonly path: string;
  readonly serial: string;
  used: boolean;
}

function samePath(a: string, b: string): boolean {
  try {
    return realpathSync(a) === b;
  } catch {
    return false;
  }
}

interface Proc {
  exit?: Promise<ExitStatus>;
  pumps: Promise<void>[];
}

interface Container {
  config: ContainerConfig;
  shareDir: string;
  /** stateDir/volumes/<id>: this container's bind-mount sources, if it has any. */
  volumes: ContainerVolumes | undefined;
  /** The config's seccomp profile as BPF, compiled once: the init and every exec get it. */
  seccomp: Buffer | undefined;
  state: "created" | "running" | "stopped";
  init: Proc;
  execs: Map<string, Proc>;
}

class VmSandbox implements Sandbox {
  readonly isolation = "vm" as const;
  private readonly containers: ContainerTable<Container>;
  private destroyed: Promise<void> | undefined;
  /** boot: this sandbox's guest booted; template: it was resumed from a VM template. */
  readonly bootedFrom: "boot" | "template";
  /** Why a VM template was asked for (MOAT_VM_TEMPLATE, vmTemplate) but not used. */
  readonly templateError: string | undefined;
  private readonly vm: RunningVm;
  private readonly agent: AgentClient;

  private constructor(
    private readonly config: SandboxConfig,
    guest: BootedGuest,
    private readonly share: string,
    /** O_PATH descriptor of stateDir/volumes, the writable share. */
    private readonly volumesFd: number,
    /** The first container's rootfs as a disk (MOAT_VM_ROOTFS=block), until a container takes it. */
    private readonly rootfsDisk: RootfsDisk | undefined,
  ) {
    this.containers = new ContainerTable(config.id);
    this.vm = guest.vm;
    this.agent = guest.agent;
    this.bootedFrom = guest.from;
    this.templateError = guest.templateError;
  }

  static async boot(config: SandboxConfig): Promise<VmSandbox> {
    if (!ID_PATTERN.test(config.id)) {
      throw new MoatError(
        "EINVAL",
        `sandbox id "${config.id}" must be 1-64 letters, digits, "_", "." or "-"`,
      );
    }
    const network = networkOf(config);
    if (network) await checkHostPortsFree(network.portForwards ?? []);
    await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
    // The real path: mounts are found again by their path in /proc/self/mounts.
    const stateDir = realpathSync(config.stateDir);
    const share = join(stateDir, "share");
    await mkdir(share, { mode: 0o700 });
    const volumes = join(stateDir, "volumes");
    await mkdir(volumes, { mode: 0o700 });
    const volumesFd = pinVolumeRoot(volumes);
    try {
      // The host's configuration file, read once for every setting below that needs it.
      let hostConfig: HostConfig | undefined;
      const host = () => (hostConfig ??= readHostConfig());
      // The first container's rootfs as a disk, when asked for (vmRootfsMode).
      let rootfsDisk: RootfsDisk | undefined;
      if (config.firstRootfs !== undefined && vmRootfsMode(process.env, host) === "block") {
        const path = join(stateDir, "rootfs-0.erofs");
        await buildRootfsImage(config.firstRootfs, path);
        rootfsDisk = { rootfs: realpathSync(config.firstRootfs), path, serial: "moat-rootfs-0", used: false };
      }
      const maxAge = vmTemplateMaxAge(process.env, host);
      const g = await bootGuest({
        id: config.id,
        runDir: join(config.stateDir, "vm"),
        ...(config.memoryMiB ? { memoryMiB: config.memoryMiB } : {}),
        ...(config.cpus ? { cpus: config.cpus } : {}),
        shares: [
          { tag: SHARE_TAG, hostPath: share, readonly: true },
          { tag: VOLUME_TAG, hostPath: volumes, readonly: false },
        ],
        ...(network ? { network } : {}),
        ...(config.progress ? { progress: config.progress } : {}),
        ...(rootfsDisk ? { disks: [{ path: rootfsDisk.path, serial: rootfsDisk.serial }] } : {}),
        template: vmTemplateEnabled(process.env, host),
        ...(maxAge !== undefined ? { templateMaxAgeSeconds: maxAge } : {}),
        ready: async (agent, timeoutMs) => {
          await agent.call(
            "CreateSandbox",
            {
              shareTag: SHARE_TAG,
              network: network ? "nat" : "none",
              volumeTag: VOLUME_TAG,
              // Fresh randomness and the host's time, before any container: a clone of a
              // template would otherwise start with its siblings' random state.
              entropy: randomBytes(64),
              unixTimeMs: Date.now(),
            },
            { timeoutMs },
          );
        },
      });
      // From here the sandbox owns the descriptor; destroy() closes it.
      return new VmSandbox(config, g, share, volumesFd, rootfsDisk);
    } catch (e) {
      // bootGuest stopped its VM before it threw.
      closeFd(volumesFd);
      await removeStateDir(stateDir);
      throw e;
    }
  }

  get id(): string {
    return this.config.id;
  }

  async create(container: ContainerConfig): Promise<void> {
    if (this.destroyed) throw new MoatError("ESTATE", `sandbox ${this.id} has been destroyed`);
    if (!ID_PATTERN.test(container.id)) {
      throw new MoatError(
        "EINVAL",
        `container id "${container.id}" must be 1-64 letters, digits, "_", "." or "-"`,
      );
    }
    const proc = this.containers.admit(container);
    // Checked before anything is mounted: a mount moat cannot make fails the create.
    const planned = planMounts(container.spec.mounts);
    const profile = container.spec.linux?.seccomp;
    const seccomp = profile ? compileSeccomp(profile as SeccompProfile).program : undefined;
    const shareDir = join(this.share, container.id);
    await mkdir(shareDir);
    try {
      mount(container.rootfs, shareDir, null, MS_BIND | MS_REC, null);
      mount("none", shareDir, null, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, null);
    } catch (e) {
      await unbind(shareDir);
      throw new MoatError(
        "EIO",
        `cannot share ${container.rootfs} with the VM: ${(e as Error).message}; moat's vm isolation runs as root`,
        { cause: e },
      );
    }
    let shared: ReturnType<typeof ContainerVolumes.share>;
    try {
      shared = ContainerVolumes.share(this.volumesFd, container.id, planned);
    } catch (e) {
      await unbind(shareDir);
      throw e;
    }
    const { volumes, mounts } = shared;
    const c: Container = {
      config: container,
      shareDir,
      volumes,
      seccomp,
      state: "created",
      init: { pumps: [] },
      execs: new Map(),
    };
    this.containers.set(container.id, c);
    // The disk holds the rootfs as it was when the sandbox started: only for the container
    // it was made for, and only once.
    const disk = this.rootfsDisk;
    const onDisk = disk !== undefined && !disk.used && samePath(container.rootfs, disk.rootfs);
    if (onDisk) disk.used = true;
    try {
      await this.agent.call("CreateContainer", {
        containerId: container.id,
        process: toProcessSpec(proc, container.stdio.terminal, seccomp),
        rootfsDir: container.id,
        hostname: container.spec.hostname ?? container.id,
        mounts,
        ...(onDisk ? { rootfsDisk: disk.serial } : {}),
        ...containerOptions(container.spec),
      });
    } catch (e) {
      if (onDisk) disk.used = false;
      this.containers.delete(container.id);
      volumes?.release();
      await unbind(shareDir);
      throw e;
    }
  }

  async start(containerId: string): Promise<{ pid?: number }> {
    const c = this.containers.need(containerId);
    if (c.state !== "created")
      throw new MoatError("ESTATE", `container ${containerId} is ${c.state}, not created`);
    await this.agent.call("StartContainer", { containerId });
    c.state = "running";
    this.attach(containerId, "", c.init, c.config.stdio);
    // Also when the wait fails (the VM died): no rejection may go unhandled here, the
    // caller's own wait() reports it.
    const stopped = () => {
      c.state = "stopped";
    };
    c.init.exit!.then(stopped, stopped);
    return {};
  }

  async exec(exec: ExecConfig): Promise<{ pid?: number }> {
    const c = this.containers.need(exec.containerId);
    if (!ID_PATTERN.test(exec.execId)) throw new MoatError("EINVAL", `exec id "${exec.execId}" is invalid`);
    if (c.execs.has(exec.execId)) throw new MoatError("EEXIST", `exec ${exec.execId} already exists`);
    await this.agent.call("ExecProcess", {
      containerId: exec.containerId,
      execId: exec.execId,
      // An exec runs under the container's seccomp profile too, as with runc.
      process: toProcessSpec(exec.process, exec.stdio.terminal, c.seccomp),
    });
    const p: Proc = { pumps: [] };
    c.execs.set(exec.execId, p);
    this.attach(exec.containerId, exec.execId, p, exec.stdio);
    return {};
  }

  async signal(containerId: string, signal: Signal, execId?: string): Promise<void> {
    this.proc(containerId, execId);
    await this.agent.call("SignalProcess", {
      containerId,
      execId: execId ?? "",
      signal: SignalNumbers[signal],
    });
  }

  async signalAll(containerId: string, signal: Signal): Promise<void> {
    this.proc(containerId);
    await this.agent.call("SignalProcess", {
      containerId,
      execId: "",
      signal: SignalNumbers[signal],
      all: true,
    });
  }

  wait(containerId: string, execId?: string): Promise<ExitStatus> {
    const p = this.proc(containerId, execId);
    if (!p.exit) throw new MoatError("ESTATE", `container ${containerId} has not been started`);
    return p.exit;
  }

  async closeStdin(containerId: string, execId?: string): Promise<void> {
    this.proc(containerId, execId);
    await this.agent.call("CloseStdin", { containerId, execId: execId ?? "" });
  }

  async resize(containerId: string, size: { width: number; height: number }, execId?: string): Promise<void> {
    this.proc(containerId, execId);
    if (!(size.width >= 1 && size.width <= 65535 && size.height >= 1 && size.height <= 65535)) {
      throw new MoatError(
        "EINVAL",
        `terminal size ${size.width}x${size.height} is out of range: width and height must be 1 to 65535`,
      );
    }
    await this.agent.call("TtyWinResize", {
      containerId,
      execId: execId ?? "",
      rows: Math.floor(size.height),
      columns: Math.floor(size.width),
    });
  }

  async pause(containerId: string): Promise<void> {
    this.containers.need(containerId);
    await this.agent.call("PauseContainer", { containerId });
  }

  async resume(containerId: string): Promise<void> {
    this.containers.need(containerId);
    await this.agent.call("ResumeContainer", { containerId });
  }

  async stats(containerId: string): Promise<ContainerStats> {
    this.containers.need(containerId);
    return this.agent.call("StatsContainer", { containerId });
  }

  async delete(containerId: string): Promise<void> {
    const c = this.containers.need(containerId);
    if (c.state === "running")
      throw new MoatError("ESTATE", `container ${containerId} is running: stop it first`);
    await this.agent.call("RemoveContainer", { containerId });
    this.containers.delete(containerId);
    c.volumes?.release();
    await unbind(c.shareDir);
  }

  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      if (!this.vm.exited) {
        await this.agent.call("DestroySandbox", {}, { timeoutMs: 5_000 }).catch(() => {});
      }
      this.agent.close();
      await this.vm.quit(5_000);
      for (const c of this.containers.values()) {
        try {
          c.volumes?.release();
        } catch {
          // removeStateDir below detaches whatever is left under the state dir
        }
        await unbind(c.shareDir);
      }
      this.containers.clear();
      closeFd(this.volumesFd);
      await removeStateDir(dirname(this.share));
    })();
    return this.destroyed;
  }

  private proc(containerId: string, execId?: string): Proc {
    return procOf(this.containers.need(containerId), containerId, execId);
  }

  /** Pump the process's stdio through the agent; its exit counts once its output is all read. */
  private attach(containerId: string, execId: string, p: Proc, stdio: Stdio): void {
    const pump = async (method: "ReadStdout" | "ReadStderr", out: NodeJS.WritableStream | undefined) => {
      for (;;) {
        const r = await this.agent.call(method, { containerId, execId, maxBytes: READ_CHUNK });
        if (r.data.length > 0 && out) {
          await new Promise<void>((resolve) => {
            if ((out as Writable).write(r.data)) resolve();
            else (out as Writable).once("drain", resolve);
          });
        }
        if (r.eof) return;
      }
    };
    p.pumps = [pump("ReadStdout", stdio.stdout), pump("ReadStderr", stdio.stderr)];
    for (const x of p.pumps) x.catch(() => {});
    if (stdio.stdin) void this.feedStdin(containerId, execId, stdio.stdin as Readable);
    else void this.agent.call("CloseStdin", { containerId, execId }).catch(() => {});
    p.exit = (async () => {
      const r = await this.agent.call("WaitProcess", { containerId, execId });
      await Promise.allSettled(p.pumps);
      const exitedAt = new Date();
      // The guest's OOM killer ended it (the agent compares the cgroup's oom_kill count).
      const oom = r.oomKilled ? { oomKilled: true } : {};
      if (r.signal) {
        const sig = signalName(r.signal);
        return { signal: (sig ?? "SIGKILL") as NodeJS.Signals, status: r.status, exitedAt, ...oom };
      }
      return { code: r.exitCode, status: r.status, exitedAt, ...oom };
    })();
    p.exit.catch(() => {});
  }

  private async feedStdin(containerId: string, execId: string, input: Readable): Promise<void> {
    try {
      for await (const chunk of input) {
        const data = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
        for (let off = 0; off < data.length; off += READ_CHUNK) {
          await this.agent.call("WriteStdin", {
            containerId,
            execId,
            data: data.subarray(off, off + READ_CHUNK),
          });
        }
      }
      await this.agent.call("CloseStdin", { containerId, execId });
    } catch {
      // The process exited or the sandbox went away; its exit status tells the story.
    }
  }
}

function toProcessSpec(
  p: Process,
  stdioTerminal: boolean | undefined,
  seccomp: Buffer | undefined,
): ProcessSpec {
  return {
    args: p.args,
    env: p.env ?? [],
    cwd: p.cwd || "/",
    uid: p.user.uid,
    gid: p.user.gid,
    terminal: Boolean(p.terminal || stdioTerminal),
    rows: p.consoleSize?.height ?? 0,
    columns: p.consoleSize?.width ?? 0,
    additionalGids: p.user.additionalGids ?? [],
    ...(p.user.umask !== undefined ? { umask: p.user.umask } : {}),
    rlimits: (p.rlimits ?? []).map((r) => ({ type: r.type, soft: r.soft, hard: r.hard })),
    ...(p.capabilities
      ? {
          capabilities: {
            bounding: capabilityMask(p.capabilities.bounding),
            effective: capabilityMask(p.capabilities.effective),
            permitted: capabilityMask(p.capabilities.permitted),
            inheritable: capabilityMask(p.capabilities.inheritable),
            ambient: capabilityMask(p.capabilities.ambient),
          },
        }
      : {}),
    noNewPrivileges: Boolean(p.noNewPrivileges),
    ...(seccomp ? { seccomp } : {}),
    ...(p.oomScoreAdj !== undefined ? { oomScoreAdj: p.oomScoreAdj } : {}),
  };
}

/** The VM's network from the sandbox config: nat unless "none"; forwards only with nat. */
function networkOf(config: SandboxConfig): UserNetConfig | undefined {
  const mode = config.network ?? "nat";
  if (mode !== "nat" && mode !== "none")
    throw new MoatError("EINVAL", `network "${String(mode)}" is not one of nat, none`);
  const ports = config.ports ?? [];
  if (mode === "none") {
    if (ports.length > 0) {
      throw new MoatError(
        "EINVAL",
        "ports cannot be forwarded into a sandbox without a network: drop the port forwards or use network nat",
      );
    }
    return undefined;
  }
  for (const p of ports) {
    for (const v of [p.host, p.guest]) {
      if (!Number.isInteger(v) || v < 1 || v > 65535)
        throw new MoatError("EINVAL", `port ${v} is not a TCP port: use a whole number from 1 to 65535`);
    }
  }
  return { portForwards: ports.map((p) => ({ host: p.host, guest: p.guest })) };
}

async function unbind(dir: string): Promise<void> {
  try {
    umount(dir, MNT_DETACH);
  } catch {
    // not mounted
  }
  await rmdir(dir).catch(() => {});
}

/** Remove the state dir, but only once nothing is mounted under it (a volume is the host's data). */
async function removeStateDir(stateDir: string): Promise<void> {
  const left = await unmountAndRemove(stateDir);
  if (left.length > 0) {
    throw new MoatError(
      "EBUSY",
      `cannot unmount ${left.join(", ")}: unmount it by hand, then remove ${stateDir}`,
    );
  }
}

function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // closed already
  }
}

/**
 * What the guest applies to a container besides its process and mounts: a read-only root,
 * the cgroup's pids.max (runc's rule: a limit above 0 applies, 0 or -1 is none) and the
 * init of INIT_ANNOTATION.
 */
function containerOptions(spec: ContainerConfig["spec"]): {
  readonlyRootfs?: boolean;
  pidsLimit?: number;
  init?: boolean;
} {
  const limit = spec.linux?.resources?.pids?.limit;
  const init = spec.annotations?.[INIT_ANNOTATION];
  if (init !== undefined && init !== "true" && init !== "false")
    throw new MoatError("EINVAL", `annotation ${INIT_ANNOTATION} is "${init}": use true or false`);
  if (limit !== undefined && !Number.isSafeInteger(limit))
    throw new MoatError("EINVAL", `linux.resources.pids.limit ${limit} is not an integer`);
  return {
    ...(spec.root?.readonly ? { readonlyRootfs: true } : {}),
    ...(limit !== undefined && limit > 0 ? { pidsLimit: limit } : {}),
    ...(init === "true" ? { init: true } : {}),
  };
}
