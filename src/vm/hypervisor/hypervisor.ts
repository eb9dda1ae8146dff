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

/** A host TCP port forwarded to a guest port by QEMU's user-mode network. */
export interface PortForward {
  readonly host: number;
  readonly guest: number;
  /** The host address QEMU listens on; default 127.0.0.1, so only this host can connect. */
  readonly hostAddress?: string;
}

/**
 * QEMU's user-mode network (slirp): the guest's TCP/UDP leaves through QEMU's own sockets
 * on the host, with no host privileges and no host interface. What a guest can reach
 * (measured with QEMU 7.2 / libslirp): every address the host itself can reach (its LAN,
 * a cloud metadata service); slirp's DNS forwarder at 10.0.2.3:53; and, through the
 * gateway address 10.0.2.2, every service listening on the host's 127.0.0.1 (other
 * 10.0.2.x addresses are not mapped). QEMU 7.2's `-netdev user` has no option to turn
 * that loopback mapping off (libslirp's disable_host_loopback is not exposed) and no
 * per-destination filter (restrict=on blocks all outbound), so host services meant to
 * be private must not trust loopback callers while nat sandboxes run, or the sandbox
 * must use network "none". ipv6=off removes the IPv6 side (fec0::2 and friends) entirely.
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
  readonly kernelArgs?: readonly string[];
  readonly accel: Accel;
  readonly memoryMiB: number;
  readonly cpus: number;
  /** The virtio-serial port the guest agent opens. */
  readonly agentPortName: string;
  readonly shares?: readonly ShareConfig[];
  /** User-mode NAT networking with these forwards; absent: no network device. */
  readonly network?: UserNetConfig;
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
  /** The last lines of the serial console and of the hypervisor's own error output, for messages. */
  diagnostics(lines?: number): string;
}

export interface Hypervisor {
  readonly name: string;
  launch(config: VmConfig): Promise<RunningVm>;
}
