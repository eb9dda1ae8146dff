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
