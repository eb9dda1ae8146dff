// The one Sandbox interface. Every front door (moat CLI, OCI runtime CLI, shim, TS API)
// calls only this; every isolation backend implements it. Keep it small: what containerd's
// task service and the runc contract need, and no more.
import type { Signal } from "./signals.js";
import type {
  Availability,
  ContainerConfig,
  ContainerStats,
  ExecConfig,
  ExitStatus,
  IsolationName,
  SandboxConfig,
} from "./types.js";

export interface Sandbox {
  readonly id: string;
  readonly isolation: IsolationName;

  /** Prepare a container from its bundle; its init process exists but has not run yet. */
  create(container: ContainerConfig): Promise<void>;
  /** Run the container's init process. Resolves with its host-visible pid, if it has one. */
  start(containerId: string): Promise<{ pid?: number }>;
  /** Start another process inside a created or running container. */
  exec(exec: ExecConfig): Promise<{ pid?: number }>;
  /** Deliver a signal to the init process (no execId) or to an exec'd process. */
  signal(containerId: string, signal: Signal, execId?: string): Promise<void>;
  /**
   * Deliver a signal to every process of the container, those its processes forked
   * included (runc kill --all, the shim's Kill with all).
   */
  signalAll(containerId: string, signal: Signal): Promise<void>;
  /** Resolve when the process ends. Safe to call several times and after it ended. */
  wait(containerId: string, execId?: string): Promise<ExitStatus>;
  /** Close the process's stdin (EOF). */
  closeStdin(containerId: string, execId?: string): Promise<void>;
  /** Resize the process's terminal, when it has one. */
  resize(containerId: string, size: { width: number; height: number }, execId?: string): Promise<void>;
  stats(containerId: string): Promise<ContainerStats>;
  /**
   * Freeze every process of the container where it stands, and thaw it again. Optional: a
   * backend that cannot leaves them out, and front doors say so.
   */
  pause?(containerId: string): Promise<void>;
  resume?(containerId: string): Promise<void>;
  /** Remove a stopped container and everything it made. */
  delete(containerId: string): Promise<void>;
  /** Kill every process, then release every host resource of the sandbox. Idempotent. */
  destroy(): Promise<void>;
}

/** A backend creates sandboxes of one isolation kind. */
export interface SandboxBackend {
  readonly isolation: IsolationName;
  /** Can this host run it now, and how (e.g. KVM or TCG)? Never throws. */
  availability(): Promise<Availability>;
  /**
   * Do the one-time work this backend needs on this host (build guest assets, probe the
   * accelerator), reporting each step, and return the availability that results.
   */
  prepare(onStep: (step: string) => void): Promise<Availability>;
  createSandbox(config: SandboxConfig): Promise<Sandbox>;
}
