// The containerd.task.v2.Task service over one moat Sandbox: one shim per pod, so every
// task (container) of a pod lives in the same VM or the same userkernel. containerd's
// calls map onto the Sandbox interface; the shim keeps each process's state (created,
// running, stopped, its exit) and the I/O containerd gave it, and reports every change as an
// event, in containerd's order.

import * as path from "node:path";
import { readBundleSpec } from "../image/bundle.js";
import { chooseIsolation, selectBackend } from "../isolation/index.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { type Signal, signalName } from "../sandbox/signals.js";
import type { ExitStatus } from "../sandbox/types.js";
import { type ErrorCode, isMoatError } from "../spec/errors.js";
import type { Process, Spec } from "../spec/runtime.js";
import { Code, TtrpcError, type TtrpcServer } from "../ttrpc/index.js";
import { openTaskIo, type TaskIo } from "./io.js";
import {
  decodeTaskRequest,
  encode,
  encodeTaskResponse,
  METRICS_TYPE_URL,
  type Mount,
  PROCESS_SPEC_TYPE_URL,
  TASK_METHODS,
  TASK_SERVICE,
  type TaskMethod,
  type TaskRequest,
  type TaskResponse,
  TaskStatus,
  toTimestamp,
} from "./protocol.js";
import type { Publisher } from "./publisher.js";
import { mountRootfs, unmountRootfs } from "./rootfs.js";

type Status = "created" | "running" | "stopped";

interface Proc {
  execId: string;
  io: TaskIo;
  ioPaths: { stdin: string; stdout: string; stderr: string; terminal: boolean };
  status: Status;
  pid: number;
  exit?: { status: number; at: Date };
  /** Resolves when the process has exited and its output is all written. */
  exited: Promise<void>;
  markExited: () => void;
  /** For an exec: what to run. */
  process?: Process;
}

interface Task {
  id: string;
  bundle: string;
  /** Where the shim mounted containerd's rootfs mounts, if it did. */
  mountedRootfs: string | null;
  init: Proc;
  execs: Map<string, Proc>;
  /** Frozen by Pause: every process of the task, execs included. */
  paused: boolean;
}

export interface ServiceOptions {
  namespace: string;
  /** The pod's id: the sandbox's name. */
  groupId: string;
  /** The sandbox's own files (sockets, logs, the VM share): removed by destroy(). */
  stateDir: string;
  publisher: Publisher;
  log: (msg: string) => void;
  version: string;
  debug: boolean;
  /** Called once Shutdown has been answered and nothing is left: the shim exits. */
  onShutdown: () => void | Promise<void>;
}

const ERRNO_TO_CODE: Partial<Record<ErrorCode, number>> = {
  ENOENT: Code.NOT_FOUND,
  EEXIST: Code.ALREADY_EXISTS,
  ESTATE: Code.FAILED_PRECONDITION,
  EINVAL: Code.INVALID_ARGUMENT,
  EUNSAFE: Code.INVALID_ARGUMENT,
  ENOTSUP: Code.UNIMPLEMENTED,
  ENOSYS: Code.UNIMPLEMENTED,
  ENOPLATFORM: Code.FAILED_PRECONDITION,
  ETIMEDOUT: Code.DEADLINE_EXCEEDED,
};

/** A MoatError becomes the ttrpc status containerd turns back into its own error kinds. */
function toTtrpc(e: unknown): TtrpcError {
  if (e instanceof TtrpcError) return e;
  if (isMoatError(e)) return new TtrpcError(ERRNO_TO_CODE[e.code] ?? Code.UNKNOWN, e.message);
  return new TtrpcError(Code.UNKNOWN, e instanceof Error ? e.message : String(e));
}

function notFound(what: string): TtrpcError {
  return new TtrpcError(Code.NOT_FOUND, `${what}: not found`);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export class TaskService {
  private sandbox: Promise<Sandbox> | undefined;
  private readonly tasks = new Map<string, Task>();
  private shuttingDown = false;

  constructor(private readonly opts: ServiceOptions) {}

  /** Register every method of containerd.task.v2.Task on the server. */
  register(server: TtrpcServer): void {
    for (const method of Object.keys(TASK_METHODS) as TaskMethod[]) {
      server.register(TASK_SERVICE, method, async (payload) => {
        const req = decodeTaskRequest(method, payload);
        if (this.opts.debug)
          this.opts.log(
            `${method} ${JSON.stringify(req, (_k, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v))}`,
          );
        try {
          const handler = this[method] as (r: typeof req) => Promise<TaskResponse<typeof method>>;
          return encodeTaskResponse(method, await handler.call(this, req));
        } catch (e) {
          const err = toTtrpc(e);
          this.opts.log(`${method} failed: ${err.message}`);
          throw err;
        }
      });
    }
  }

  private ensureSandbox(spec: Spec, firstRootfs: string): Promise<Sandbox> {
    this.sandbox ??= (async () => {
      const choice = chooseIsolation({ annotations: spec.annotations });
      const backend = await selectBackend(choice);
      this.opts.log(`pod ${this.opts.groupId}: isolation ${backend.isolation} (asked: ${choice})`);
      return backend.createSandbox({
        id: this.opts.groupId,
        stateDir: this.opts.stateDir,
        firstRootfs,
        debug: this.opts.debug,
      });
    })();
    // A sandbox that failed to come up is not kept: the next Create tries again.
    this.sandbox.catch(() => {
      this.sandbox = undefined;
    });
    return this.sandbox;
  }

  private task(id: string): Task {
    const t = this.tasks.get(id);
    if (!t) throw notFound(`container ${id}`);
    return t;
  }

  private proc(id: string, execId: string): Proc {
    const t = this.task(id);
    if (!execId) return t.init;
    const p = t.execs.get(execId);
    if (!p) throw notFound(`process ${execId} of container ${id}`);
    return p;
  }

  private newProc(execId: string, ioPaths: Proc["ioPaths"], process?: Process): Proc {
    const io = openTaskIo(ioPaths);
    const d = deferred();
    return {
      execId,
      io,
      ioPaths,
      status: "created",
      pid: 0,
      exited: d.promise,
      markExited: d.resolve,
      ...(process ? { process } : {}),
    };
  }

  /**
   * Record an exit once: close the process's output, send TaskOOM if the OOM killer ended
   * it (before the exit, as containerd's own shim does), TaskExit, then answer waiters.
   */
  private async exited(t: Task, p: Proc, status: number, at = new Date(), oomKilled = false): Promise<void> {
    if (p.exit) return;
    p.exit = { status, at };
    p.status = "stopped";
    await p.io.close().catch(() => {});
    if (oomKilled) void this.opts.publisher.publish("TaskOOM", { containerId: t.id });
    void this.opts.publisher.publish("TaskExit", {
      containerId: t.id,
      id: p.execId || t.id,
      pid: p.pid,
      exitStatus: status,
      exitedAt: toTimestamp(at),
    });
    p.markExited();
  }

  private watch(sandbox: Sandbox, t: Task, p: Proc): void {
    sandbox.wait(t.id, p.execId || undefined).then(
      (s: ExitStatus) => this.exited(t, p, s.status, s.exitedAt, s.oomKilled),
      (e: Error) => {
        this.opts.log(`waiting for ${t.id}/${p.execId || "init"} failed: ${e.message}`);
        return this.exited(t, p, 255);
      },
    );
  }

  async State(r: TaskRequest<"State">): Promise<TaskResponse<"State">> {
    const t = this.task(r.id);
    const p = this.proc(r.id, r.execId);
    return {
      id: r.execId || t.id,
      bundle: t.bundle,
      pid: p.pid,
      status:
        p.status === "running" && t.paused
          ? TaskStatus.PAUSED
          : TaskStatus[p.status === "created" ? "CREATED" : p.status === "running" ? "RUNNING" : "STOPPED"],
      stdin: p.ioPaths.stdin,
      stdout: p.ioPaths.stdout,
      stderr: p.ioPaths.stderr,
      terminal: p.ioPaths.terminal,
      exitStatus: p.exit?.status ?? 0,
      ...(p.exit ? { exitedAt: toTimestamp(p.exit.at) } : {}),
      execId: r.execId,
    };
  }

  async Create(r: TaskRequest<"Create">): Promise<TaskResponse<"Create">> {
    if (this.tasks.has(r.id)) throw new TtrpcError(Code.ALREADY_EXISTS, `container ${r.id}: already exists`);
    if (r.checkpoint) throw new TtrpcError(Code.UNIMPLEMENTED, "moat cannot restore a checkpoint");
    const bundle = path.resolve(r.bundle);
    const spec = readBundleSpec(bundle);
    const mounted = mountRootfs(bundle, r.rootfs as Mount[]);
    let init: Proc | undefined;
    try {
      const ioPaths = { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal };
      init = this.newProc("", ioPaths);
      if (r.terminal && spec.process) spec.process.terminal = true;
      const rootfs = path.resolve(bundle, spec.root?.path ?? "rootfs");
      const sandbox = await this.ensureSandbox(spec, rootfs);
      await sandbox.create({
        id: r.id,
        bundle,
        spec,
        rootfs,
        stdio: init.io.stdio,
      });
      // No process runs before Start; the shim stands for it until then, as containerd
      // needs a pid for a created task.
      init.pid = process.pid;
    } catch (e) {
      await init?.io.close().catch(() => {});
      if (mounted) unmountRootfs(mounted);
      throw e;
    }
    const t: Task = { id: r.id, bundle, mountedRootfs: mounted, init, execs: new Map(), paused: false };
    this.tasks.set(r.id, t);
    void this.opts.publisher.publish("TaskCreate", {
      containerId: r.id,
      bundle,
      rootfs: r.rootfs,
      io: { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal },
      checkpoint: "",
      pid: init.pid,
    });
    return { pid: init.pid };
  }

  async Start(r: TaskRequest<"Start">): Promise<TaskResponse<"Start">> {
    const t = this.task(r.id);
    const p = this.proc(r.id, r.execId);
    if (p.status !== "created") {
      throw new TtrpcError(
        Code.FAILED_PRECONDITION,
        `process ${r.execId || r.id} is ${p.status}, not created`,
      );
    }
    const sandbox = await this.sandbox!;
    if (!r.execId) {
      const { pid } = await sandbox.start(t.id);
      p.pid = pid ?? process.pid;
      p.status = "running";
      void this.opts.publisher.publish("TaskStart", { containerId: t.id, pid: p.pid });
    } else {
      if (t.init.status !== "running") {
        throw new TtrpcError(
          Code.FAILED_PRECONDITION,
          `container ${t.id} is not running: cannot start exec ${r.execId}`,
        );
      }
      const { pid } = await sandbox.exec({
        containerId: t.id,
        execId: r.execId,
        process: p.process!,
        stdio: p.io.stdio,
      });
      p.pid = pid ?? process.pid;
      p.status = "running";
      void this.opts.publisher.publish("TaskExecStarted", {
        containerId: t.id,
        execId: r.execId,
        pid: p.pid,
      });
    }
    this.watch(sandbox, t, p);
    return { pid: p.pid };
  }

  async Delete(r: TaskRequest<"Delete">): Promise<TaskResponse<"Delete">> {
    const t = this.task(r.id);
    const p = this.proc(r.id, r.execId);
    if (p.status === "running") {
      throw new TtrpcError(Code.FAILED_PRECONDITION, `process ${r.execId || r.id} is running: kill it first`);
    }
    const exit = p.exit ?? { status: 0, at: new Date() };
    if (r.execId) {
      t.execs.delete(r.execId);
      await p.io.close().catch(() => {});
    } else {
      for (const e of t.execs.values()) {
        if (e.status === "running")
          throw new TtrpcError(Code.FAILED_PRECONDITION, `exec ${e.execId} of ${t.id} still runs`);
      }
      const sandbox = await this.sandbox;
      await sandbox?.delete(t.id);
      await p.io.close().catch(() => {});
      if (t.mountedRootfs) unmountRootfs(t.mountedRootfs);
      this.tasks.delete(t.id);
      void this.opts.publisher.publish("TaskDelete", {
        containerId: t.id,
        pid: p.pid,
        exitStatus: exit.status,
        exitedAt: toTimestamp(exit.at),
        id: t.id,
      });
    }
    return { pid: p.pid, exitStatus: exit.status, exitedAt: toTimestamp(exit.at) };
  }

  async Pids(r: TaskRequest<"Pids">): Promise<TaskResponse<"Pids">> {
    const t = this.task(r.id);
    const procs = [t.init, ...t.execs.values()].filter((p) => p.status === "running");
    return { processes: procs.map((p) => ({ pid: p.pid })) };
  }

  async Pause(r: TaskRequest<"Pause">): Promise<TaskResponse<"Pause">> {
    const t = this.task(r.id);
    if (t.init.status !== "running")
      throw new TtrpcError(Code.FAILED_PRECONDITION, `container ${t.id} is not running`);
    if (t.paused) throw new TtrpcError(Code.FAILED_PRECONDITION, `container ${t.id} is already paused`);
    const sandbox = await this.sandbox!;
    if (!sandbox.pause) {
      throw new TtrpcError(
        Code.UNIMPLEMENTED,
        `the ${sandbox.isolation} isolation cannot pause a task: it would end a traced process; use the vm isolation`,
      );
    }
    await sandbox.pause(t.id);
    t.paused = true;
    void this.opts.publisher.publish("TaskPaused", { containerId: t.id });
    return {};
  }

  async Resume(r: TaskRequest<"Resume">): Promise<TaskResponse<"Resume">> {
    const t = this.task(r.id);
    if (!t.paused) throw new TtrpcError(Code.FAILED_PRECONDITION, `container ${t.id} is not paused`);
    const sandbox = await this.sandbox!;
    await sandbox.resume!(t.id);
    t.paused = false;
    void this.opts.publisher.publish("TaskResumed", { containerId: t.id });
    return {};
  }

  async Checkpoint(): Promise<TaskResponse<"Checkpoint">> {
    throw new TtrpcError(Code.UNIMPLEMENTED, "moat cannot checkpoint a task");
  }

  async Update(): Promise<TaskResponse<"Update">> {
    throw new TtrpcError(
      Code.UNIMPLEMENTED,
      "moat cannot change a running task's resources: the sandbox is sized when it starts",
    );
  }

  async Kill(r: TaskRequest<"Kill">): Promise<TaskResponse<"Kill">> {
    const t = this.task(r.id);
    const p = this.proc(r.id, r.execId);
    const sig = signalName(r.signal);
    if (!sig) throw new TtrpcError(Code.INVALID_ARGUMENT, `signal ${r.signal} is not a signal moat knows`);
    const all = r.all && !r.execId;
    const targets = all ? [p, ...t.execs.values()] : [p];
    const sandbox = await this.sandbox;
    let delivered = 0;
    for (const q of targets) {
      if (q.status === "created") {
        // Nothing runs yet: a signal ends the process before it starts, as with runc.
        await this.exited(t, q, 128 + r.signal);
        delivered++;
      } else if (q.status === "running" && !all) {
        await sandbox!.signal(t.id, sig as Signal, q.execId || undefined);
        delivered++;
      }
    }
    // With all, one delivery reaches every process of the container, forked ones included.
    if (all && p.status === "running") {
      await sandbox!.signalAll(t.id, sig as Signal);
      delivered++;
    }
    if (delivered === 0) throw notFound(`process ${r.execId || r.id}: process already finished`);
    return {};
  }

  async Exec(r: TaskRequest<"Exec">): Promise<TaskResponse<"Exec">> {
    const t = this.task(r.id);
    if (!r.execId) throw new TtrpcError(Code.INVALID_ARGUMENT, "an exec needs an exec id");
    if (t.execs.has(r.execId)) throw new TtrpcError(Code.ALREADY_EXISTS, `exec ${r.execId}: already exists`);
    if (t.init.status === "stopped")
      throw new TtrpcError(Code.FAILED_PRECONDITION, `container ${t.id} has stopped`);
    if (!r.spec || r.spec.typeUrl !== PROCESS_SPEC_TYPE_URL) {
      throw new TtrpcError(Code.INVALID_ARGUMENT, `an exec's spec must be a ${PROCESS_SPEC_TYPE_URL}`);
    }
    let process: Process;
    try {
      process = JSON.parse(Buffer.from(r.spec.value).toString("utf8")) as Process;
    } catch (e) {
      throw new TtrpcError(
        Code.INVALID_ARGUMENT,
        `the exec's process spec is not JSON: ${(e as Error).message}`,
      );
    }
    if (r.terminal) process.terminal = true;
    const p = this.newProc(
      r.execId,
      {
        stdin: r.stdin,
        stdout: r.stdout,
        stderr: r.stderr,
        terminal: r.terminal,
      },
      process,
    );
    t.execs.set(r.execId, p);
    void this.opts.publisher.publish("TaskExecAdded", { containerId: t.id, execId: r.execId });
    return {};
  }

  async ResizePty(r: TaskRequest<"ResizePty">): Promise<TaskResponse<"ResizePty">> {
    this.proc(r.id, r.execId);
    const sandbox = await this.sandbox;
    await sandbox!.resize(r.id, { width: r.width, height: r.height }, r.execId || undefined);
    return {};
  }

  async CloseIO(r: TaskRequest<"CloseIO">): Promise<TaskResponse<"CloseIO">> {
    const p = this.proc(r.id, r.execId);
    if (r.stdin) p.io.closeStdin();
    return {};
  }

  async Wait(r: TaskRequest<"Wait">): Promise<TaskResponse<"Wait">> {
    const p = this.proc(r.id, r.execId);
    await p.exited;
    return { exitStatus: p.exit!.status, exitedAt: toTimestamp(p.exit!.at) };
  }

  async Stats(r: TaskRequest<"Stats">): Promise<TaskResponse<"Stats">> {
    this.task(r.id);
    const sandbox = await this.sandbox;
    const s = await sandbox!.stats(r.id);
    const value = encode("io.containerd.cgroups.v1.Metrics", {
      pids: { current: s.pids },
      cpu: { usage: { total: s.cpuNanos } },
      memory: { rss: s.memoryBytes, usage: { usage: s.memoryBytes } },
    });
    return { stats: { typeUrl: METRICS_TYPE_URL, value } };
  }

  async Connect(r: TaskRequest<"Connect">): Promise<TaskResponse<"Connect">> {
    const t = this.tasks.get(r.id);
    return { shimPid: process.pid, taskPid: t?.init.pid ?? 0, version: this.opts.version };
  }

  async Shutdown(r: TaskRequest<"Shutdown">): Promise<TaskResponse<"Shutdown">> {
    // Other tasks of the pod still use this shim: containerd asks after each task's delete.
    if (this.tasks.size > 0 && !r.now) return {};
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      setImmediate(() => void this.shutdown());
    }
    return {};
  }

  /** Kill everything, release the sandbox and the rootfs mounts, then let the shim exit. */
  async shutdown(): Promise<void> {
    const sandbox = await this.sandbox?.catch(() => undefined);
    await sandbox?.destroy().catch((e: Error) => this.opts.log(`destroy: ${e.message}`));
    for (const t of this.tasks.values()) {
      for (const p of [t.init, ...t.execs.values()]) await p.io.close().catch(() => {});
      if (t.mountedRootfs) unmountRootfs(t.mountedRootfs);
    }
    this.tasks.clear();
    await this.opts.publisher.close();
    await this.opts.onShutdown();
  }
}
