// What the vm backend needs from a virtual machine monitor. QEMU is the first
// implementation; a second (Cloud Hypervisor, Firecracker) would implement the same.
import type { Socket } from "node:net";
import type { QmpClient } from "./qmp.js";

export type Accel = "kvm" | "tcg";

export interface ShareConfig {
  readonly tag: string;
  readonly hostPath: string;
  readonly readonly: boolean;
}

/** A read-only disk for the guest, found there by its serial number. */
export interface DiskConfig {
  readonly path: string;
  /** 1-20 letters, digits, "_", "." or "-" (virtio-blk serials hold 20 bytes). */
  readonly serial: string;
}

/** A host TCP port forwarded to a guest port by the VM's user-mode network (passt). */
export interface PortForward {
  readonly host: number;
  readonly guest: number;
  /** The host address passt listens on; default 127.0.0.1, so only this host can connect. */
  readonly hostAddress?: string;
}

/**
 * The VM's user-mode network: passt turns the guest's TCP/UDP into the host's own
 * sockets, with no host privileges and no host interface. QEMU's slirp (`-netdev user`)
 * is not used: in QEMU 7.2 it maps the gateway 10.0.2.2 to the host's 127.0.0.1 with no
 * way to turn that off. passt runs with --no-map-gw, and moat drops the guest frames
 * addressed to the host itself (loopback, 0.0.0.0, its own addresses: see
 * frame-filter.ts), so services bound to the host's loopback are out of reach. What a
 * guest can reach: every other address the host can reach (its LAN included), and DNS at
 * 10.0.2.3, forwarded to the host's resolver. IPv6 is off. Debian bookworm's passt never
 * ACKs the guest's SYN-ACK of a forwarded connection; moat's relay does (passt-handshake.ts),
 * so services that speak first work behind a port forward.
 */
export interface UserNetConfig {
  readonly portForwards?: readonly PortForward[];
}

export interface VmConfig {
  /** Names the VM in messages; letters, digits, "_", "." and "-". */
  readonly id: string;
  /** A directory private to this VM for its sockets and console log; created if missing. */
  readonly runDir: string;
  readonly kernel: string;
  readonly initrd: string;
  /** A read-only disk image for the guest (moat's guest image), or none. */
  readonly image?: string;
  /** More read-only disks, each with the serial the guest finds it by. */
  readonly disks?: readonly DiskConfig[];
  readonly kernelArgs?: readonly string[];
  readonly accel: Accel;
  readonly memoryMiB: number;
  readonly cpus: number;
  /** The virtio-serial port the guest agent opens. */
  readonly agentPortName: string;
  readonly shares?: readonly ShareConfig[];
  /** User-mode NAT networking with these forwards; absent: no network device. */
  readonly network?: UserNetConfig;
  /**
   * The guest's RAM as a file: shared (a template being built writes through to it) or
   * private (a clone maps a template's memory copy-on-write). Absent: anonymous RAM.
   */
  readonly memoryFile?: { readonly path: string; readonly shared: boolean };
  /**
   * Restore this device state (written by RunningVm.saveState) instead of booting: the
   * guest resumes where the template paused, and kernel and initrd are not loaded. Needs
   * `memoryFile` to be the template's memory, and a VM of the same shape.
   */
  readonly restoreState?: string;
  /** How long the hypervisor may take to come up (not the guest boot); default 10 s. */
  readonly startTimeoutMs?: number;
}

export interface VmExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunningVm {
  readonly id: string;
  /** The hypervisor process id. */
  readonly pid: number;
  /** The guest serial console, written as the guest runs. */
  readonly consoleLog: string;
  /** The host end of the agent's virtio-serial port. */
  readonly agent: Socket;
  /** The VM's monitor (QMP for QEMU). */
  qmp(): QmpClient;
  /** Resolves when the hypervisor process has exited. */
  wait(): Promise<VmExit>;
  /** Whether the hypervisor process has exited. */
  readonly exited: boolean;
  /** Kill the hypervisor at once and wait for it. */
  kill(): Promise<VmExit>;
  /** Ask the hypervisor to exit (QMP quit); kill it if it has not within `timeoutMs`. */
  quit(timeoutMs?: number): Promise<VmExit>;
  /**
   * Pause the guest and write its device state to `file` (atomically); the guest stays
   * paused. With a shared memoryFile, the two make a VM template.
   */
  saveState(file: string, timeoutMs?: number): Promise<void>;
  /** The last lines of the serial console and of the hypervisor's own error output, for messages. */
  diagnostics(lines?: number): string;
}

export interface Hypervisor {
  readonly name: string;
  /** The hypervisor's build, which saved device state is only valid for (VM templates). */
  version(): Promise<string>;
  launch(config: VmConfig): Promise<RunningVm>;
}
