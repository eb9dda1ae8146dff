// The kubelet's side of the CRI, for the tests: a gRPC client of containerd's
// runtime.v1.RuntimeService and ImageService on containerd's own socket, with the subset of
// the CRI messages the tests send and read. The definitions are written here from the public
// CRI facts (k8s.io/cri-api runtime/v1: message, field and enum names and numbers); protobufjs
// reads them at load time and grpc-js carries the bytes, so there is no generated code.
// Also: a "pause" image for the pod's sandbox container, built with moat's image builder.
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { saveImages } from "../../src/image/archive.js";
import { buildImage } from "../../src/image/build.js";
import { busyboxLayer } from "../../src/image/default-image.js";
import { ImageStore } from "../../src/image/store.js";
import type { Containerd } from "./containerd.js";

const CRI_PROTO = `
syntax = "proto3";
package runtime.v1;

message VersionRequest { string version = 1; }
message VersionResponse {
  string version = 1;
  string runtime_name = 2;
  string runtime_version = 3;
  string runtime_api_version = 4;
}

enum NamespaceMode { POD = 0; CONTAINER = 1; NODE = 2; TARGET = 3; }
message NamespaceOption {
  NamespaceMode network = 1;
  NamespaceMode pid = 2;
  NamespaceMode ipc = 3;
  string target_id = 4;
}
message LinuxSandboxSecurityContext { NamespaceOption namespace_options = 1; bool privileged = 6; }
message LinuxPodSandboxConfig {
  string cgroup_parent = 1;
  LinuxSandboxSecurityContext security_context = 2;
}
message PodSandboxMetadata { string name = 1; string uid = 2; string namespace = 3; uint32 attempt = 4; }
message PodSandboxConfig {
  PodSandboxMetadata metadata = 1;
  string hostname = 2;
  string log_directory = 3;
  map<string, string> labels = 6;
  map<string, string> annotations = 7;
  LinuxPodSandboxConfig linux = 8;
}
message RunPodSandboxRequest { PodSandboxConfig config = 1; string runtime_handler = 2; }
message RunPodSandboxResponse { string pod_sandbox_id = 1; }
message StopPodSandboxRequest { string pod_sandbox_id = 1; }
message StopPodSandboxResponse {}
message RemovePodSandboxRequest { string pod_sandbox_id = 1; }
message RemovePodSandboxResponse {}

enum PodSandboxState { SANDBOX_READY = 0; SANDBOX_NOTREADY = 1; }
message PodSandboxStatusRequest { string pod_sandbox_id = 1; bool verbose = 2; }
message PodSandboxStatus {
  string id = 1;
  PodSandboxMetadata metadata = 2;
  PodSandboxState state = 3;
  int64 created_at = 4;
  map<string, string> annotations = 8;
  string runtime_handler = 9;
}
message PodSandboxStatusResponse { PodSandboxStatus status = 1; map<string, string> info = 2; }
message PodSandboxFilter { string id = 1; }
message ListPodSandboxRequest { PodSandboxFilter filter = 1; }
message PodSandbox {
  string id = 1;
  PodSandboxMetadata metadata = 2;
  PodSandboxState state = 3;
  string runtime_handler = 7;
}
message ListPodSandboxResponse { repeated PodSandbox items = 1; }

message ImageSpec { string image = 1; }
message KeyValue { string key = 1; string value = 2; }
message ContainerMetadata { string name = 1; uint32 attempt = 2; }
message LinuxContainerSecurityContext { NamespaceOption namespace_options = 3; }
message LinuxContainerConfig { LinuxContainerSecurityContext security_context = 2; }
message ContainerConfig {
  ContainerMetadata metadata = 1;
  ImageSpec image = 2;
  repeated string command = 3;
  repeated string args = 4;
  string working_dir = 5;
  repeated KeyValue envs = 6;
  map<string, string> labels = 9;
  map<string, string> annotations = 10;
  string log_path = 11;
  bool stdin = 12;
  bool stdin_once = 13;
  bool tty = 14;
  LinuxContainerConfig linux = 15;
}
message CreateContainerRequest {
  string pod_sandbox_id = 1;
  ContainerConfig config = 2;
  PodSandboxConfig sandbox_config = 3;
}
message CreateContainerResponse { string container_id = 1; }
message StartContainerRequest { string container_id = 1; }
message StartContainerResponse {}
message StopContainerRequest { string container_id = 1; int64 timeout = 2; }
message StopContainerResponse {}
message RemoveContainerRequest { string container_id = 1; }
message RemoveContainerResponse {}

enum ContainerState {
  CONTAINER_CREATED = 0;
  CONTAINER_RUNNING = 1;
  CONTAINER_EXITED = 2;
  CONTAINER_UNKNOWN = 3;
}
message ContainerStatusRequest { string container_id = 1; bool verbose = 2; }
message ContainerStatus {
  string id = 1;
  ContainerMetadata metadata = 2;
  ContainerState state = 3;
  int64 created_at = 4;
  int64 started_at = 5;
  int64 finished_at = 6;
  int32 exit_code = 7;
  ImageSpec image = 8;
  string image_ref = 9;
  string reason = 10;
  string message = 11;
  string log_path = 15;
}
message ContainerStatusResponse { ContainerStatus status = 1; map<string, string> info = 2; }
message ContainerFilter { string id = 1; string pod_sandbox_id = 3; }
message ListContainersRequest { ContainerFilter filter = 1; }
message Container {
  string id = 1;
  string pod_sandbox_id = 2;
  ContainerMetadata metadata = 3;
  ContainerState state = 6;
}
message ListContainersResponse { repeated Container containers = 1; }

message ExecSyncRequest { string container_id = 1; repeated string cmd = 2; int64 timeout = 3; }
message ExecSyncResponse { bytes stdout = 1; bytes stderr = 2; int32 exit_code = 3; }

message UInt64Value { uint64 value = 1; }
message ContainerAttributes { string id = 1; ContainerMetadata metadata = 2; }
message CpuUsage { int64 timestamp = 1; UInt64Value usage_core_nano_seconds = 2; UInt64Value usage_nano_cores = 3; }
message MemoryUsage {
  int64 timestamp = 1;
  UInt64Value working_set_bytes = 2;
  UInt64Value available_bytes = 3;
  UInt64Value usage_bytes = 4;
  UInt64Value rss_bytes = 5;
}
message ContainerStats { ContainerAttributes attributes = 1; CpuUsage cpu = 2; MemoryUsage memory = 3; }
message ContainerStatsRequest { string container_id = 1; }
message ContainerStatsResponse { ContainerStats stats = 1; }

message Image { string id = 1; repeated string repo_tags = 2; uint64 size = 4; }
message ImageStatusRequest { ImageSpec image = 1; bool verbose = 2; }
message ImageStatusResponse { Image image = 1; map<string, string> info = 2; }
`;

const root = protobuf.parse(CRI_PROTO).root;
root.resolveAll();

// ---- the TypeScript view of the messages (protobufjs camelCases field names) ----

export type NamespaceMode = "POD" | "CONTAINER" | "NODE" | "TARGET";
export type ContainerState =
  | "CONTAINER_CREATED"
  | "CONTAINER_RUNNING"
  | "CONTAINER_EXITED"
  | "CONTAINER_UNKNOWN";
export type PodSandboxState = "SANDBOX_READY" | "SANDBOX_NOTREADY";

export interface NamespaceOption {
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
}
export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}
export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  logDirectory?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: { cgroupParent?: string; securityContext?: { namespaceOptions?: NamespaceOption } };
}
export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string };
  command?: string[];
  args?: string[];
  workingDir?: string;
  envs?: Array<{ key: string; value: string }>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  logPath?: string;
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
  linux?: { securityContext?: { namespaceOptions?: NamespaceOption } };
}
export interface ContainerStatus {
  id: string;
  metadata: { name: string; attempt: number };
  state: ContainerState;
  createdAt: number;
  startedAt: number;
  finishedAt: number;
  exitCode: number;
  image: { image: string } | null;
  imageRef: string;
  reason: string;
  message: string;
  logPath: string;
}
interface UInt64 {
  value: number;
}

/** Each call: its service, and the request and response the tests send and read. */
interface Calls {
  Version: [{ version: string }, { runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }];
  RunPodSandbox: [{ config: PodSandboxConfig; runtimeHandler: string }, { podSandboxId: string }];
  StopPodSandbox: [{ podSandboxId: string }, Record<string, never>];
  RemovePodSandbox: [{ podSandboxId: string }, Record<string, never>];
  PodSandboxStatus: [
    { podSandboxId: string; verbose?: boolean },
    {
      status: {
        id: string;
        state: PodSandboxState;
        createdAt: number;
        annotations: Record<string, string>;
        runtimeHandler: string;
      };
      info: Record<string, string>;
    },
  ];
  ListPodSandbox: [
    { filter?: { id?: string } },
    { items: Array<{ id: string; state: PodSandboxState; runtimeHandler: string }> },
  ];
  CreateContainer: [
    { podSandboxId: string; config: ContainerConfig; sandboxConfig: PodSandboxConfig },
    { containerId: string },
  ];
  StartContainer: [{ containerId: string }, Record<string, never>];
  StopContainer: [{ containerId: string; timeout: number }, Record<string, never>];
  RemoveContainer: [{ containerId: string }, Record<string, never>];
  ContainerStatus: [
    { containerId: string; verbose?: boolean },
    { status: ContainerStatus; info: Record<string, string> },
  ];
  ListContainers: [
    { filter?: { id?: string; podSandboxId?: string } },
    {
      containers: Array<{
        id: string;
        podSandboxId: string;
        metadata: { name: string };
        state: ContainerState;
      }>;
    },
  ];
  ExecSync: [
    { containerId: string; cmd: string[]; timeout?: number },
    { stdout: Buffer; stderr: Buffer; exitCode: number },
  ];
  ContainerStats: [
    { containerId: string },
    {
      stats: {
        attributes: { id: string };
        cpu: { timestamp: number; usageCoreNanoSeconds: UInt64 | null } | null;
        memory: { timestamp: number; workingSetBytes: UInt64 | null; usageBytes: UInt64 | null } | null;
      };
    },
  ];
  ImageStatus: [
    { image: { image: string } },
    { image: { id: string; repoTags: string[]; size: number } | null },
  ];
}
export type CriMethod = keyof Calls;
export type CriRequest<M extends CriMethod> = Calls[M][0];
export type CriResponse<M extends CriMethod> = Calls[M][1];

const IMAGE_METHODS = new Set<CriMethod>(["ImageStatus"]);

const TO_OBJECT: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
};

/** A CRI call failed: the gRPC status code and containerd's message. */
export class CriError extends Error {
  constructor(
    readonly method: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`CRI ${method} failed (${grpc.status[code] ?? code}): ${details}`);
  }
}

/** A client of containerd's CRI, as the kubelet holds one: unary calls on the unix socket. */
export class CriClient {
  private readonly client: grpc.Client;

  constructor(socket: string) {
    this.client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  }

  call<M extends CriMethod>(method: M, request: CriRequest<M>, timeoutMs = 180_000): Promise<CriResponse<M>> {
    const service = IMAGE_METHODS.has(method) ? "ImageService" : "RuntimeService";
    const reqType = root.lookupType(`runtime.v1.${method}Request`);
    const resType = root.lookupType(`runtime.v1.${method}Response`);
    const serialize = (v: CriRequest<M>) =>
      Buffer.from(reqType.encode(reqType.fromObject(v as Record<string, unknown>)).finish());
    const deserialize = (b: Buffer) => resType.toObject(resType.decode(b), TO_OBJECT) as CriResponse<M>;
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        `/runtime.v1.${service}/${method}`,
        serialize,
        deserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => {
          if (err) reject(new CriError(method, err.code, err.details));
          else resolve(res!);
        },
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

/** The CRI's runtime handler for moat, and the TOML that declares it (the CRI plugin section). */
export const HANDLER = "moat";
export const PAUSE_IMAGE = "moat.local/pause:latest";

export function criConfig(opts: { cniDir: string; sandboxImage?: string }): string {
  return `[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  sandbox_image = "${opts.sandboxImage ?? PAUSE_IMAGE}"
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${HANDLER}]
      runtime_type = "io.containerd.moat.v2"
      pod_annotations = ["run.moat.*"]
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${opts.cniDir}/bin"
    conf_dir = "${opts.cniDir}/net.d"
`;
}

/**
 * A pause image for the pod's sandbox container, imported into containerd's k8s.io namespace:
 * moat's busybox layer with a command that sleeps until killed. The built-in image's `sh`
 * would not do: the CRI runs the sandbox container with no stdin, so sh ends at once, and a
 * pod whose sandbox container has exited is not ready. (There is no network to pull one.)
 */
export async function importPauseImage(cd: Containerd, name = PAUSE_IMAGE): Promise<void> {
  const store = await ImageStore.open(path.join(cd.dir, "moat"));
  await buildImage(store, {
    layers: [await busyboxLayer()],
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Cmd: ["sleep", "2147483647"],
      WorkingDir: "/",
    },
    name,
  });
  const archive = path.join(cd.dir, "pause.tar");
  await saveImages(store, [name], archive);
  const r = cd.ctr(["-n", "k8s.io", "images", "import", archive]);
  if (r.status !== 0) throw new Error(`ctr images import of ${name} failed: ${r.stderr}`);
}
