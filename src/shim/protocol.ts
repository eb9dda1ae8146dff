// containerd's shim v2 API as moat speaks it: the containerd.task.v2.Task service that
// containerd calls on the shim, the task events the shim sends back through
// containerd.services.events.ttrpc.v1.Events/Forward, and the few shared types they use.
// Written here from the public protocol facts (service, message and field names and
// numbers); protobufjs reads the text at start-up, so there is no generated code.
import protobuf from "protobufjs";
import { protobufCodec } from "../ttrpc/codec.js";

export const TASK_SERVICE = "containerd.task.v2.Task";
export const EVENTS_SERVICE = "containerd.services.events.ttrpc.v1.Events";

const GOOGLE_PROTO = `
syntax = "proto3";
package google.protobuf;
message Empty {}
message Any { string type_url = 1; bytes value = 2; }
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
`;

const TYPES_PROTO = `
syntax = "proto3";
package containerd.types;
message Mount {
  string type = 1;
  string source = 2;
  string target = 3;
  repeated string options = 4;
}
`;

const TASK_TYPES_PROTO = `
syntax = "proto3";
package containerd.v1.types;
enum Status { UNKNOWN = 0; CREATED = 1; RUNNING = 2; STOPPED = 3; PAUSED = 4; PAUSING = 5; }
message ProcessInfo { uint32 pid = 1; google.protobuf.Any info = 2; }
`;

const TASK_PROTO = `
syntax = "proto3";
package containerd.task.v2;

message CreateTaskRequest {
  string id = 1;
  string bundle = 2;
  repeated containerd.types.Mount rootfs = 3;
  bool terminal = 4;
  string stdin = 5;
  string stdout = 6;
  string stderr = 7;
  string checkpoint = 8;
  string parent_checkpoint = 9;
  google.protobuf.Any options = 10;
}
message CreateTaskResponse { uint32 pid = 1; }
message DeleteRequest { string id = 1; string exec_id = 2; }
message DeleteResponse { uint32 pid = 1; uint32 exit_status = 2; google.protobuf.Timestamp exited_at = 3; }
message ExecProcessRequest {
  string id = 1;
  string exec_id = 2;
  bool terminal = 3;
  string stdin = 4;
  string stdout = 5;
  string stderr = 6;
  google.protobuf.Any spec = 7;
}
message ResizePtyRequest { string id = 1; string exec_id = 2; uint32 width = 3; uint32 height = 4; }
message StateRequest { string id = 1; string exec_id = 2; }
message StateResponse {
  string id = 1;
  string bundle = 2;
  uint32 pid = 3;
  containerd.v1.types.Status status = 4;
  string stdin = 5;
  string stdout = 6;
  string stderr = 7;
  bool terminal = 8;
  uint32 exit_status = 9;
  google.protobuf.Timestamp exited_at = 10;
  string exec_id = 11;
}
message KillRequest { string id = 1; string exec_id = 2; uint32 signal = 3; bool all = 4; }
message CloseIORequest { string id = 1; string exec_id = 2; bool stdin = 3; }
message PidsRequest { string id = 1; }
message PidsResponse { repeated containerd.v1.types.ProcessInfo processes = 1; }
message CheckpointTaskRequest { string id = 1; string path = 2; google.protobuf.Any options = 3; }
message UpdateTaskRequest { string id = 1; google.protobuf.Any resources = 2; map<string, string> annotations = 3; }
message StartRequest { string id = 1; string exec_id = 2; }
message StartResponse { uint32 pid = 1; }
message WaitRequest { string id = 1; string exec_id = 2; }
message WaitResponse { uint32 exit_status = 1; google.protobuf.Timestamp exited_at = 2; }
message StatsRequest { string id = 1; }
message StatsResponse { google.protobuf.Any stats = 1; }
message ConnectRequest { string id = 1; }
message ConnectResponse { uint32 shim_pid = 1; uint32 task_pid = 2; string version = 3; }
message ShutdownRequest { string id = 1; bool now = 2; }
message PauseRequest { string id = 1; }
message ResumeRequest { string id = 1; }
`;

// The task events (containerd.events) and the envelope the shim forwards them in.
const EVENTS_PROTO = `
syntax = "proto3";
package containerd.events;
message TaskIO { string stdin = 1; string stdout = 2; string stderr = 3; bool terminal = 4; }
message TaskCreate {
  string container_id = 1;
  string bundle = 2;
  repeated containerd.types.Mount rootfs = 3;
  TaskIO io = 4;
  string checkpoint = 5;
  uint32 pid = 6;
}
message TaskStart { string container_id = 1; uint32 pid = 2; }
message TaskDelete {
  string container_id = 1;
  uint32 pid = 2;
  uint32 exit_status = 3;
  google.protobuf.Timestamp exited_at = 4;
  string id = 5;
}
message TaskExit {
  string container_id = 1;
  string id = 2;
  uint32 pid = 3;
  uint32 exit_status = 4;
  google.protobuf.Timestamp exited_at = 5;
}
message TaskOOM { string container_id = 1; }
message TaskExecAdded { string container_id = 1; string exec_id = 2; }
message TaskExecStarted { string container_id = 1; string exec_id = 2; uint32 pid = 3; }
message TaskPaused { string container_id = 1; }
message TaskResumed { string container_id = 1; }
`;

const FORWARD_PROTO = `
syntax = "proto3";
package containerd.services.events.ttrpc.v1;
message Envelope {
  google.protobuf.Timestamp timestamp = 1;
  string namespace = 2;
  string topic = 3;
  google.protobuf.Any event = 4;
}
message ForwardRequest { Envelope envelope = 1; }
`;

// cgroup v1 metrics, the stats payload containerd (ctr task metrics, the CRI) decodes on
// Linux: only the parts moat can fill from a sandbox's figures.
const METRICS_PROTO = `
syntax = "proto3";
package io.containerd.cgroups.v1;
message Metrics {
  PidsStat pids = 2;
  CPUStat cpu = 3;
  MemoryStat memory = 4;
}
message PidsStat { uint64 current = 1; uint64 limit = 2; }
message CPUStat { CPUUsage usage = 1; }
message CPUUsage { uint64 total = 1; uint64 kernel = 2; uint64 user = 3; repeated uint64 per_cpu = 4; }
message MemoryStat {
  uint64 rss = 2;
  MemoryEntry usage = 33;
}
message MemoryEntry { uint64 limit = 1; uint64 usage = 2; uint64 max = 3; uint64 failcnt = 4; }
`;

const root = new protobuf.Root();
for (const text of [
  GOOGLE_PROTO,
  TYPES_PROTO,
  TASK_TYPES_PROTO,
  TASK_PROTO,
  EVENTS_PROTO,
  FORWARD_PROTO,
  METRICS_PROTO,
]) {
  protobuf.parse(text, root);
}
root.resolveAll();

/** The task API's status enum (containerd.v1.types.Status). */
export const TaskStatus = { UNKNOWN: 0, CREATED: 1, RUNNING: 2, STOPPED: 3, PAUSED: 4 } as const;

export interface Timestamp {
  seconds: number;
  nanos: number;
}
export interface Any {
  typeUrl: string;
  value: Uint8Array;
}
export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export function toTimestamp(d: Date): Timestamp {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

// The TypeScript view of each message (protobufjs camelCases the field names).
export interface Messages {
  "google.protobuf.Empty": Record<string, never>;
  CreateTaskRequest: {
    id: string;
    bundle: string;
    rootfs: Mount[];
    terminal: boolean;
    stdin: string;
    stdout: string;
    stderr: string;
    checkpoint: string;
  };
  CreateTaskResponse: { pid: number };
  DeleteRequest: { id: string; execId: string };
  DeleteResponse: { pid: number; exitStatus: number; exitedAt: Timestamp };
  ExecProcessRequest: {
    id: string;
    execId: string;
    terminal: boolean;
    stdin: string;
    stdout: string;
    stderr: string;
    spec: Any | null;
  };
  ResizePtyRequest: { id: string; execId: string; width: number; height: number };
  StateRequest: { id: string; execId: string };
  StateResponse: {
    id: string;
    bundle: string;
    pid: number;
    status: number;
    stdin: string;
    stdout: string;
    stderr: string;
    terminal: boolean;
    exitStatus: number;
    exitedAt?: Timestamp;
    execId: string;
  };
  KillRequest: { id: string; execId: string; signal: number; all: boolean };
  CloseIORequest: { id: string; execId: string; stdin: boolean };
  PidsRequest: { id: string };
  PidsResponse: { processes: Array<{ pid: number }> };
  CheckpointTaskRequest: { id: string };
  UpdateTaskRequest: { id: string };
  StartRequest: { id: string; execId: string };
  StartResponse: { pid: number };
  WaitRequest: { id: string; execId: string };
  WaitResponse: { exitStatus: number; exitedAt: Timestamp };
  StatsRequest: { id: string };
  StatsResponse: { stats: Any };
  ConnectRequest: { id: string };
  ConnectResponse: { shimPid: number; taskPid: number; version: string };
  ShutdownRequest: { id: string; now: boolean };
  PauseRequest: { id: string };
  ResumeRequest: { id: string };
}

/** Every method of containerd.task.v2.Task: its request and response message. */
export const TASK_METHODS = {
  State: ["StateRequest", "StateResponse"],
  Create: ["CreateTaskRequest", "CreateTaskResponse"],
  Start: ["StartRequest", "StartResponse"],
  Delete: ["DeleteRequest", "DeleteResponse"],
  Pids: ["PidsRequest", "PidsResponse"],
  Pause: ["PauseRequest", "google.protobuf.Empty"],
  Resume: ["ResumeRequest", "google.protobuf.Empty"],
  Checkpoint: ["CheckpointTaskRequest", "google.protobuf.Empty"],
  Kill: ["KillRequest", "google.protobuf.Empty"],
  Exec: ["ExecProcessRequest", "google.protobuf.Empty"],
  ResizePty: ["ResizePtyRequest", "google.protobuf.Empty"],
  CloseIO: ["CloseIORequest", "google.protobuf.Empty"],
  Update: ["UpdateTaskRequest", "google.protobuf.Empty"],
  Wait: ["WaitRequest", "WaitResponse"],
  Stats: ["StatsRequest", "StatsResponse"],
  Connect: ["ConnectRequest", "ConnectResponse"],
  Shutdown: ["ShutdownRequest", "google.protobuf.Empty"],
} as const satisfies Record<string, readonly [keyof Messages, keyof Messages]>;

export type TaskMethod = keyof typeof TASK_METHODS;
export type TaskRequest<M extends TaskMethod> = Messages[(typeof TASK_METHODS)[M][0]];
export type TaskResponse<M extends TaskMethod> = Messages[(typeof TASK_METHODS)[M][1]];

const codec = protobufCodec(root, "containerd.task.v2");

/** Encode any message of this file by its (full, or containerd.task.v2-relative) name. */
export function encode(name: string, value: object): Uint8Array {
  return codec.encode(name, value);
}

export function decode<T>(name: string, data: Uint8Array): T {
  return codec.decode<T>(name, data);
}

export function decodeTaskRequest<M extends TaskMethod>(m: M, data: Uint8Array): TaskRequest<M> {
  return decode(TASK_METHODS[m][0], data);
}
export function encodeTaskResponse<M extends TaskMethod>(m: M, v: TaskResponse<M>): Uint8Array {
  return encode(TASK_METHODS[m][1], v);
}
export function encodeTaskRequest<M extends TaskMethod>(m: M, v: Partial<TaskRequest<M>>): Uint8Array {
  return encode(TASK_METHODS[m][0], v);
}
export function decodeTaskResponse<M extends TaskMethod>(m: M, data: Uint8Array): TaskResponse<M> {
  return decode(TASK_METHODS[m][1], data);
}

/**
 * The task events, by topic, with the message each carries. containerd puts an event in an
 * Any whose type_url is the message's bare full name (no type.googleapis.com/ prefix).
 */
export const EVENT_TOPICS = {
  TaskCreate: "/tasks/create",
  TaskStart: "/tasks/start",
  TaskExit: "/tasks/exit",
  TaskDelete: "/tasks/delete",
  TaskExecAdded: "/tasks/exec-added",
  TaskExecStarted: "/tasks/exec-started",
  TaskPaused: "/tasks/paused",
  TaskResumed: "/tasks/resumed",
  TaskOOM: "/tasks/oom",
} as const;
export type EventName = keyof typeof EVENT_TOPICS;

/** A ForwardRequest payload carrying one event. */
export function encodeForward(
  namespace: string,
  event: EventName,
  value: object,
  at = new Date(),
): Uint8Array {
  return encode("containerd.services.events.ttrpc.v1.ForwardRequest", {
    envelope: {
      timestamp: toTimestamp(at),
      namespace,
      topic: EVENT_TOPICS[event],
      event: { typeUrl: `containerd.events.${event}`, value: encode(`containerd.events.${event}`, value) },
    },
  });
}

/** The type_url containerd gives a runtime-spec Process (JSON, not protobuf) in ExecProcessRequest.spec. */
export const PROCESS_SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/** The stats payload's type on Linux (cgroup v1 metrics, which containerd 1.6 decodes). */
export const METRICS_TYPE_URL = "io.containerd.cgroups.v1.Metrics";
