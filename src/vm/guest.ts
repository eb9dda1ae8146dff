// Boot a guest from the cached assets: pick the accelerator, launch the hypervisor and
// wait until the guest agent serves on its virtio-serial port. Every way a boot can
// fail (missing or damaged kernel/initramfs, panic, hang) ends in a MoatError that
// quotes the guest console, within a bounded time.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentClient } from "./agent-client.js";
import { ensureAssets, type GuestAssets } from "./assets/build.js";
import { AGENT_PORT_NAME } from "./assets/init-script.js";
import { moatRoot } from "./assets/manifest.js";
import { type AccelChoice, chooseAccel } from "./hypervisor/accel.js";
import type {
  Accel,
  DiskConfig,
  Hypervisor,
  RunningVm,
  ShareConfig,
  UserNetConfig,
} from "./hypervisor/hypervisor.js";
import { QemuHypervisor } from "./hypervisor/qemu.js";
import { dropTemplate, ensureTemplate } from "./template.js";

/** The guest's RAM: its kernel, the agent on Node (read from the guest image), the containers. */
export const DEFAULT_GUEST_MEMORY_MIB = 512;

export interface BootOptions {
  readonly id: string;
  /** Private directory for the VM's sockets and console log; the caller removes it. */
  readonly runDir: string;
  /** moat's state root for the asset cache. */
  readonly root?: string;
  /** Boot these instead of the cached assets. */
  readonly assets?: Pick<GuestAssets, "kernel" | "initrd" | "image" | "dir"> &
    Partial<Pick<GuestAssets, "manifest">>;
  /** Skip the probe and use this accelerator. */
  readonly accel?: Accel;
  readonly memoryMiB?: number;
  readonly cpus?: number;
  readonly shares?: readonly ShareConfig[];
  /** More read-only disks (containers' rootfs images); a guest with any always boots. */
  readonly disks?: readonly DiskConfig[];
  /** User-mode NAT networking; absent: the guest has no NIC. */
  readonly network?: UserNetConfig;
  readonly kernelArgs?: readonly string[];
  /** Until the guest agent answers; default 60 s under TCG, 15 s under KVM. */
  readonly bootTimeoutMs?: number;
  readonly hypervisor?: Hypervisor;
  /** Steps of a guest-asset build this boot waits for; default: silent. */
  readonly progress?: (step: string) => void;
  /**
   * Resume a clone of the VM template of this shape (made by one boot the first time)
   * instead of booting; if that fails, the template is dropped and the guest boots.
   */
  readonly template?: boolean;
  /** Remake a template older than this (seconds); default: template.ts's. */
  readonly templateMaxAgeSeconds?: number;
  /**
   * The first calls on the new guest (the sandbox's CreateSandbox). A clone's answer to
   * them is also the proof that it resumed: if they fail on a clone, the clone and its
   * template are dropped and the guest boots (and they are made on it again).
   */
  readonly ready?: (agent: AgentClient, timeoutMs: number) => Promise<void>;
}

export interface BootedGuest {
  readonly vm: RunningVm;
  readonly agent: AgentClient;
  readonly accel: AccelChoice;
  /** boot: the guest booted; template: it was resumed from a VM template. */
  readonly from: "boot" | "template";
  /** Why a template was asked for but not used. */
  readonly templateError?: string;
}

export async function bootGuest(opts: BootOptions): Promise<BootedGuest> {
  const assets =
    opts.assets ?? (await ensureAssets({ root: opts.root, progress: opts.progress ?? (() => {}) }));
  const hv = opts.hypervisor ?? new QemuHypervisor();
  const accel = await chooseGuestAccel(assets, hv, opts.accel);
  const timeout = opts.bootTimeoutMs ?? (accel.accel === "kvm" ? 15_000 : 60_000);
  const launch = {
    id: opts.id,
    runDir: opts.runDir,
    kernel: assets.kernel,
    initrd: assets.initrd,
    ...(assets.image !== undefined ? { image: assets.image } : {}),
    accel: accel.accel,
    memoryMiB: opts.memoryMiB ?? DEFAULT_GUEST_MEMORY_MIB,
    cpus: opts.cpus ?? 1,
    agentPortName: AGENT_PORT_NAME,
    shares: opts.shares,
    ...(opts.disks?.length ? { disks: opts.disks } : {}),
    network: opts.network,
    kernelArgs: opts.kernelArgs,
  };
  let templateError: string | undefined;
  if (opts.template && opts.disks?.length) {
    // A template's guest probed its disks as it booted: a clone cannot be given others.
    templateError = "a guest with rootfs disks boots: VM templates hold no disks of their own";
  } else if (opts.template) {
    const manifest = assets.manifest;
    if (manifest === undefined) {
      templateError = "VM templates need the cached guest assets";
    } else {
      try {
        const template = await ensureTemplate({
          root: opts.root ?? moatRoot(),
          assets: { ...assets, manifest },
          hypervisor: hv,
          hypervisorVersion: await hv.version(),
          shape: {
            accel: accel.accel,
            memoryMiB: launch.memoryMiB,
            cpus: launch.cpus,
            network: opts.network !== undefined,
            shares: (opts.shares ?? []).map((s) => ({ tag: s.tag, readonly: s.readonly })),
            kernelArgs: opts.kernelArgs ?? [],
          },
          bootTimeoutMs: timeout,
          ...(opts.progress ? { progress: opts.progress } : {}),
          ...(opts.templateMaxAgeSeconds !== undefined ? { maxAgeSeconds: opts.templateMaxAgeSeconds } : {}),
        });
        let vm: RunningVm | undefined;
        try {
          vm = await hv.launch({
            ...launch,
            memoryFile: { path: template.memory, shared: false },
            restoreState: template.state,
          });
          // The guest's end of the port was opened before the template paused: no
          // VSERPORT_CHANGE comes, and the agent is already reading. The template's agent
          // answered GetGuestDetails with this protocol before it paused.
          const agent = new AgentClient(vm);
          if (opts.ready) await opts.ready(agent, timeout);
          else await agent.call("GetGuestDetails", {}, { timeoutMs: timeout });
          return { vm, agent, accel, from: "template" };
        } catch (e) {
          if (vm) await vm.kill();
          await dropTemplate(template);
          throw e;
        }
      } catch (e) {
        templateError = (e as Error).message;
      }
    }
  }
  const vm = await hv.launch(launch);
  try {
    const agent = await AgentClient.connect(vm, timeout);
    await agent.call("GetGuestDetails", {}, { timeoutMs: timeout });
    await opts.ready?.(agent, timeout);
    return { vm, agent, accel, from: "boot", ...(templateError !== undefined ? { templateError } : {}) };
  } catch (e) {
    await vm.kill();
    throw e;
  }
}

/** KVM if a probe guest boots under it (cached per host kernel), else TCG. */
export function chooseGuestAccel(
  assets: Pick<GuestAssets, "kernel" | "initrd" | "image" | "dir">,
  hv: Hypervisor = new QemuHypervisor(),
  forced?: Accel,
): Promise<AccelChoice> {
  if (forced) return Promise.resolve({ accel: forced, reason: "chosen by the caller" });
  return chooseAccel({ cacheDir: assets.dir, probe: () => probeKvm(hv, assets) });
}

async function probeKvm(
  hv: Hypervisor,
  assets: Pick<GuestAssets, "kernel" | "initrd" | "image" | "dir">,
): Promise<void> {
  const runDir = await mkdtemp(join(tmpdir(), "moat-kvm-probe-"));
  try {
    const g = await bootGuest({
      id: "kvm-probe",
      runDir,
      assets,
      accel: "kvm",
      hypervisor: hv,
      bootTimeoutMs: 20_000,
    });
    await g.vm.kill();
  } finally {
    await rm(runDir, { recursive: true, force: true });
  }
}
