// The agent API between the host (src/vm) and the guest agent (src/agent/main.ts), in
// the spirit of Kata's agent.proto. Both sides import this file, so the messages cannot
// drift apart. Payloads travel as ttrpc unary calls on the service below.
import protobuf from "protobufjs";
import { protobufCodec } from "../ttrpc/codec.js";

export const AGENT_SERVICE = "moat.agent.v1.Agent";
/** Bumped when a message changes incompatibly; GetGuestDetails reports it. */
export const AGENT_PROTOCOL_VERSION = 8;

const AGENT_PROTO = `
syntax = "proto3";
package moat.agent.v1;

message Empty {}

message Process {
  repeated string args = 1;
  repeated string env = 2;
  string cwd = 3;
  uint32 uid = 4;
  uint32 gid = 5;
  bool terminal = 6;
  // The terminal's first size; 0 means 24 x 80.
  uint32 rows = 7;
  uint32 columns = 8;
  repeated uint32 additional_gids = 9;
  // Octal file mode creation mask; absent: the guest's default (022).
  optional uint32 umask = 10;
  repeated Rlimit rlimits = 11;
  // Absent: the process keeps every capability (an OCI config without a capabilities object).
  Capabilities capabilities = 12;
  bool no_new_privileges = 13;
  // The container's seccomp profile as a classic BPF program (struct sock_filter[]),
  // compiled on the host; empty: no filter.
  bytes seccomp = 14;
  // The OCI process's oomScoreAdj; absent: 0, the kernel's default (the agent and the
  // guest's other helpers run at -997, which a container process must not inherit).
  optional int32 oom_score_adj = 15;
}

message Rlimit {
  // RLIMIT_NOFILE etc., as OCI names them.
  string type = 1;
  uint64 soft = 2;
  uint64 hard = 3;
}

// Each set as a 64-bit mask in hex (bit n: capability number n).
message Capabilities {
  string bounding = 1;
  string effective = 2;
  string permitted = 3;
  string inheritable = 4;
  string ambient = 5;
}

message CreateSandboxRequest {
  // The 9p mount tag of the host directory holding every container's rootfs.
  string share_tag = 1;
  // "nat": the host gave the guest a user-mode NIC to configure; "" or "none": no NIC.
  string network = 2;
  // The 9p mount tag of the writable host directory holding the containers' bind-mount
  // sources (volumes), one subdirectory per container; "" when the host offers none.
  string volume_tag = 3;
  // 32-512 bytes from the host's CSPRNG: the guest credits them to its entropy pool and
  // reseeds its CRNG before anything else, so a guest restored from a VM template does not
  // share the template's random state with its siblings.
  bytes entropy = 4;
  // The host's realtime clock in ms since the epoch, which the guest takes as its own (a
  // restored guest wakes at the template's time; a TCG guest falls behind while it boots).
  uint64 unix_time_ms = 5;
}

// One entry of the runtime spec's mounts, as the guest applies it inside the container.
message Mount {
  // Absolute path inside the container; resolved within its rootfs.
  string destination = 1;
  // "bind", "tmpfs", "proc", "devpts", "mqueue", "sysfs", "cgroup" or "cgroup2".
  string type = 2;
  // For "bind": a path relative to the volume share; empty otherwise.
  string source = 3;
  repeated string options = 4;
}

message CreateContainerRequest {
  string container_id = 1;
  Process process = 2;
  // The container's rootfs: a directory of the sandbox share, by name.
  string rootfs_dir = 3;
  string hostname = 4;
  // Applied in this order after the rootfs is laid out, before the process starts.
  repeated Mount mounts = 5;
  // When set, the rootfs is instead the erofs image on the read-only disk with this
  // virtio-blk serial number (rootfs_dir is then ignored).
  string rootfs_disk = 6;
  // The runtime spec's root.readonly: the rootfs is mounted read-only once the mounts
  // are made (they, /dev and the container's tmpfs stay writable).
  bool readonly_rootfs = 7;
  // linux.resources.pids.limit: the container cgroup's pids.max; 0 means no limit.
  uint64 pids_limit = 8;
  // docker's --init: a tiny init (moat-creds --init) runs the container's process as its
  // child, forwarding signals and reaping orphans. Execs are not affected.
  bool init = 9;
}

message ContainerRequest { string container_id = 1; }

message ExecProcessRequest {
  string container_id = 1;
  string exec_id = 2;
  Process process = 3;
}

message ProcessRequest {
  string container_id = 1;
  // Empty for the container's init process.
  string exec_id = 2;
}

message StartResponse { uint32 pid = 1; }

message SignalProcessRequest {
  string container_id = 1;
  string exec_id = 2;
  uint32 signal = 3;
  // Every process of the container (exec_id empty), those its processes forked included.
  bool all = 4;
}

message WaitProcessResponse {
  // Shell convention: the exit code, or 128 + the signal number.
  int32 status = 1;
  int32 exit_code = 2;
  // The fatal signal's number, 0 when the process exited.
  uint32 signal = 3;
  // The guest's OOM killer ended it: killed (or its shell gone with status 137) while the
  // container cgroup's oom_kill count rose.
  bool oom_killed = 4;
}

message WriteStdinRequest {
  string container_id = 1;
  string exec_id = 2;
  bytes data = 3;
}

message WriteStdinResponse { uint32 length = 1; }

message ReadStreamRequest {
  string container_id = 1;
  string exec_id = 2;
  uint32 max_bytes = 3;
}

message ReadStreamResponse {
  bytes data = 1;
  // No more data will ever come.
  bool eof = 2;
}

message TtyWinResizeRequest {
  string container_id = 1;
  string exec_id = 2;
  uint32 rows = 3;
  uint32 columns = 4;
}

message StatsContainerResponse {
  uint64 memory_bytes = 1;
  uint64 cpu_nanos = 2;
  uint32 pids = 3;
}

message GuestDetailsResponse {
  string kernel_release = 1;
  uint32 protocol_version = 2;
  uint64 memory_total_bytes = 3;
  uint32 cpus = 4;
}
`;

export interface ProcessSpec {
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  terminal: boolean;
  rows?: number;
  columns?: number;
  additionalGids?: number[];
  umask?: number;
  rlimits?: Array<{ type: string; soft: number; hard: number }>;
  capabilities?: {
    bounding: string;
    effective: string;
    permitted: string;
    inheritable: string;
    ambient: string;
  };
  noNewPrivileges?: boolean;
  seccomp?: Uint8Array;
  oomScoreAdj?: number;
}

export interface MountSpec {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** Where the guest image holds the entropy and clock helper (src/vm/assets/moat-fresh.c). */
export const FRESH_HELPER = "/bin/moat-fresh";

/** Where the guest image holds the credentials helper (src/vm/assets/moat-creds.c). */
export const CREDS_HELPER = "/bin/moat-creds";

// The TypeScript view of each message (field names as in the proto, camelCased).
export interface Messages {
  Empty: Record<string, never>;
  CreateSandboxRequest: {
    shareTag: string;
    network?: string;
    volumeTag?: string;
    entropy?: Uint8Array;
    unixTimeMs?: number;
  };
  CreateContainerRequest: {
    containerId: string;
    process: ProcessSpec;
    rootfsDir: string;
    hostname: string;
    mounts?: MountSpec[];
    rootfsDisk?: string;
    readonlyRootfs?: boolean;
    pidsLimit?: number;
    init?: boolean;
  };
  ContainerRequest: { containerId: string };
  ExecProcessRequest: { containerId: string; execId: string; process: ProcessSpec };
  ProcessRequest: { containerId: string; execId: string };
  StartResponse: { pid: number };
  SignalProcessRequest: { containerId: string; execId: string; signal: number; all?: boolean };
  WaitProcessResponse: { status: number; exitCode: number; signal: number; oomKilled?: boolean };
  WriteStdinRequest: { containerId: string; execId: string; data: Uint8Array };
  WriteStdinResponse: { length: number };
  ReadStreamRequest: { containerId: string; execId: string; maxBytes: number };
  ReadStreamResponse: { data: Uint8Array; eof: boolean };
  TtyWinResizeRequest: { containerId: string; execId: string; rows: number; columns: number };
  StatsContainerResponse: { memoryBytes: number; cpuNanos: number; pids: number };
  GuestDetailsResponse: {
    kernelRelease: string;
    protocolVersion: number;
    memoryTotalBytes: number;
    cpus: number;
  };
}

/** Every method: its request and response message. */
export const METHODS = {
  CreateSandbox: ["CreateSandboxRequest", "Empty"],
  CreateContainer: ["CreateContainerRequest", "Empty"],
  StartContainer: ["ContainerRequest", "StartResponse"],
  ExecProcess: ["ExecProcessRequest", "StartResponse"],
  SignalProcess: ["SignalProcessRequest", "Empty"],
  WaitProcess: ["ProcessRequest", "WaitProcessResponse"],
  WriteStdin: ["WriteStdinRequest", "WriteStdinResponse"],
  CloseStdin: ["ProcessRequest", "Empty"],
  ReadStdout: ["ReadStreamRequest", "ReadStreamResponse"],
  ReadStderr: ["ReadStreamRequest", "ReadStreamResponse"],
  TtyWinResize: ["TtyWinResizeRequest", "Empty"],
  RemoveContainer: ["ContainerRequest", "Empty"],
  DestroySandbox: ["Empty", "Empty"],
  StatsContainer: ["ContainerRequest", "StatsContainerResponse"],
  // Freeze and thaw every process of a container (its cgroup's cgroup.freeze).
  PauseContainer: ["ContainerRequest", "Empty"],
  ResumeContainer: ["ContainerRequest", "Empty"],
  GetGuestDetails: ["Empty", "GuestDetailsResponse"],
} as const satisfies Record<string, readonly [keyof Messages, keyof Messages]>;

export type Method = keyof typeof METHODS;
export type RequestOf<M extends Method> = Messages[(typeof METHODS)[M][0]];
export type ResponseOf<M extends Method> = Messages[(typeof METHODS)[M][1]];

const codec = protobufCodec(protobuf.parse(AGENT_PROTO).root, "moat.agent.v1");

function encodeMessage(name: keyof Messages, value: object): Uint8Array {
  return codec.encode(name, value);
}

function decodeMessage<T>(name: keyof Messages, data: Uint8Array): T {
  return codec.decode<T>(name, data);
}

export function encodeRequest<M extends Method>(m: M, v: RequestOf<M>): Uint8Array {
  return encodeMessage(METHODS[m][0], v);
}
export function decodeRequest<M extends Method>(m: M, data: Uint8Array): RequestOf<M> {
  return decodeMessage(METHODS[m][0], data);
}
export function encodeResponse<M extends Method>(m: M, v: ResponseOf<M>): Uint8Array {
  return encodeMessage(METHODS[m][1], v);
}
export function decodeResponse<M extends Method>(m: M, data: Uint8Array): ResponseOf<M> {
  return decodeMessage(METHODS[m][1], data);
}

/** Where the guest image holds the pty helper (src/vm/assets/moat-pty.c). */
export const PTY_HELPER = "/bin/moat-pty";

/**
 * The guest's side of QEMU's user-mode network: slirp's fixed addresses, configured
 * statically so the guest needs no DHCP client.
 */
export const GUEST_NET = {
  address: "10.0.2.15/24",
  gateway: "10.0.2.2",
  dns: "10.0.2.3",
} as const;

/** Container and exec ids become guest paths and cgroup names: keep them plain. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
