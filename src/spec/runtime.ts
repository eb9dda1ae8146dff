// OCI runtime-spec (config.json of a bundle) and state types: pure data, no behaviour.
// Field names follow runtime-spec v1.1 so that JSON written here is read by runc and crun.

export const OciVersion = "1.1.0";

export interface User {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

export interface Rlimit {
  type: string;
  hard: number;
  soft: number;
}

export interface ConsoleSize {
  height: number;
  width: number;
}

export interface Process {
  terminal?: boolean;
  consoleSize?: ConsoleSize;
  user: User;
  args: string[];
  env?: string[];
  cwd: string;
  capabilities?: {
    bounding?: string[];
    effective?: string[];
    inheritable?: string[];
    permitted?: string[];
    ambient?: string[];
  };
  rlimits?: Rlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
}

export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface Hooks {
  prestart?: Hook[];
  createRuntime?: Hook[];
  createContainer?: Hook[];
  startContainer?: Hook[];
  poststart?: Hook[];
  poststop?: Hook[];
}

export interface LinuxNamespace {
  type: "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup" | "time";
  path?: string;
}

export interface LinuxResources {
  memory?: { limit?: number; reservation?: number; swap?: number };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  pids?: { limit: number };
  devices?: Array<{ allow: boolean; type?: string; major?: number; minor?: number; access?: string }>;
}

export interface Linux {
  namespaces?: LinuxNamespace[];
  uidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
  gidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
  devices?: Array<{
    path: string;
    type: string;
    major: number;
    minor: number;
    fileMode?: number;
    uid?: number;
    gid?: number;
  }>;
  cgroupsPath?: string;
  resources?: LinuxResources;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  sysctl?: Record<string, string>;
  seccomp?: unknown;
}

/**
 * "true": docker's --init, a tiny init as the container's PID 1 that runs its process as a
 * child, forwards signals to it and reaps orphans (the vm isolation's moat-creds --init).
 */
export const INIT_ANNOTATION = "run.moat.init";

export interface Spec {
  ociVersion: string;
  process?: Process;
  root?: { path: string; readonly?: boolean };
  hostname?: string;
  domainname?: string;
  mounts?: Mount[];
  hooks?: Hooks;
  annotations?: Record<string, string>;
  linux?: Linux;
}

export type ContainerStatus = "creating" | "created" | "running" | "stopped" | "paused";

/** The state the runtime reports (`runc state`) and hands to hooks on stdin. */
export interface State {
  ociVersion: string;
  id: string;
  status: ContainerStatus;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}
