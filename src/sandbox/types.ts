// The types every isolation backend and every front door share.
// A sandbox is a pod: one kernel (a VM's or the userkernel's) holding one or more containers.
import type { Process, Spec } from "../spec/index.js";

export type IsolationName = "vm" | "userkernel";

/** How a process ended. Exactly one of `code` and `signal` is set. */
export interface ExitStatus {
  /** Exit code as passed to exit(2), 0..255. */
  code?: number;
  /** Name of the fatal signal ("SIGKILL"), when the process was killed by one. */
  signal?: NodeJS.Signals;
  /** The shell convention callers report: code, or 128 + signal number. */
  status: number;
  exitedAt: Date;
  /** The kernel's OOM killer ended it (reported as 137, as docker does). */
  oomKilled?: boolean;
}

/**
 * Where a process's standard streams go. A front door passes the host side of
 * each stream; a backend must not close streams it did not open.
 * With `terminal`, stdout carries the pty output and stderr is unused.
 */
export interface Stdio {
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  terminal?: boolean;
}

/** Everything a backend needs to create one container: a bundle on disk. */
export interface ContainerConfig {
  id: string;
  /** Absolute path of the OCI bundle directory (holds config.json). */
  bundle: string;
  /** The parsed config.json of the bundle. */
  spec: Spec;
  /** Absolute path of the rootfs (spec.root.path resolved against the bundle). */
  rootfs: string;
  stdio: Stdio;
}

export interface ExecConfig {
  containerId: string;
  execId: string;
  process: Process;
  stdio: Stdio;
}

export interface ContainerStats {
  /** Resident memory of the container's processes, bytes. */
  memoryBytes: number;
  /** CPU time used, nanoseconds. */
  cpuNanos: number;
  pids: number;
}

/** Sizing and wiring for the whole sandbox (pod). */
export interface SandboxConfig {
  id: string;
  /** Memory for the sandbox's kernel, MiB (the VM's RAM; a budget for the userkernel). */
  memoryMiB?: number;
  cpus?: number;
  network?: "nat" | "none";
  /** host:guest TCP port forwards. */
  ports?: Array<{ host: number; guest: number }>;
  /** Where the backend keeps per-sandbox files (sockets, logs); removed by destroy(). */
  stateDir: string;
  /**
   * The rootfs of the container the caller will create first, when it knows it (moat run,
   * the OCI runtime): the vm isolation can then give it to the guest as a disk.
   */
  firstRootfs?: string;
  debug?: boolean;
  /**
   * Steps of one-time work the sandbox waits for (building the vm's guest assets), for a person
   * watching a terminal. Default: silent, because a detached monitor's stdio is the container's.
   */
  progress?: (step: string) => void;
}

export interface Availability {
  available: boolean;
  /** Why not, or which mode (e.g. "tcg: KVM probe failed: ..."). */
  reason: string;
  /** Runs on hardware virtualisation (KVM). `auto` picks the vm isolation only then. */
  hardware?: boolean;
}
