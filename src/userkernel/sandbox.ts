// The userkernel as a Sandbox backend: each container gets one kernel instance (Kernel:
// its gofer, VFS and pid namespace) in which its init process and every exec'd process run,
// each in its own stub. What the kernel cannot do yet is refused with a clear error, never
// faked: terminals need a pty device; ports, networks and CPU limits a network stack and a
// scheduler of its own.
import { readFileSync } from "node:fs";
import * as os from "node:os";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { ContainerTable, procOf } from "../sandbox/containers.js";
import type { Sandbox, SandboxBackend } from "../sandbox/sandbox.js";
import { type Signal, SignalNumbers } from "../sandbox/signals.js";
import type {
  Availability,
  ContainerConfig,
  ContainerStats,
  ExecConfig,
  ExitStatus,
  SandboxConfig,
  Stdio,
} from "../sandbox/types.js";
import { MoatError } from "../spec/errors.js";
import { INIT_ANNOTATION, type Process } from "../spec/runtime.js";
import { ExecError } from "./kernel/exec.js";
import { Kernel, type ProcessHandle, type RunResult } from "./kernel/kernel.js";
import { planMounts } from "./kernel/mounts.js";
import { MemoryBudget } from "./mm/memfile.js";

type State = "created" | "running" | "stopped";

/** One process of a container: its init or an exec. */
interface Proc {
  state: State;
  /** Our own stdin stream, so closeStdin() can end it without closing the caller's. */
  stdin?: PassThrough;
  source?: Readable;
  abort: AbortController;
  /** The kernel's handle, once the program runs: signals, usage. */
  handle?: ProcessHandle;
  /** Signals sent before that, delivered then. */
  queued: Signal[];
  exit?: Promise<ExitStatus>;
}

interface Container {
  config: ContainerConfig;
  /** The init's state is the container's. */
  init: Proc;
  execs: Map<string, Proc>;
  /** Booted by the first start or exec; shut down by delete and destroy. */
  kernel?: Promise<Kernel>;
  /** The init's pid in the kernel, reserved at boot so that it is 1 even after an earlier exec. */
  initPid?: number;
}

const TERMINAL_REFUSED =
  "the userkernel has no terminal device yet: run without -t (stdio is passed as pipes)";

export class UserkernelBackend implements SandboxBackend {
  readonly isolation = "userkernel" as const;

  async availability(): Promise<Availability> {
    if (process.arch !== "x64" || os.platform() !== "linux") {
      return {
        available: false,
        reason: `the userkernel runs x86-64 Linux binaries on x86-64 Linux hosts, not ${os.platform()}/${process.arch}`,
      };
    }
    const [major = 0, minor = 0] = os.release().split(".").map(Number);
    if (major < 5 || (major === 5 && minor < 6)) {
      return {
        available: false,
        reason: `the gofer needs openat2 (Linux 5.6+); this host runs ${os.release()}`,
      };
    }
    try {
      const scope = Number(readFileSync("/proc/sys/kernel/yama/ptrace_scope", "utf8").trim());
      if (scope >= 3)
        return { available: false, reason: "ptrace is disabled on this host (kernel.yama.ptrace_scope=3)" };
    } catch {
      // no Yama: ptrace is governed by the usual permissions only
    }
    return { available: true, reason: "ptrace platform (PTRACE_SYSEMU)" };
  }

  /** Nothing to build: the stub is generated per run and the gofer is moat's own code. */
  async prepare(): Promise<Availability> {
    return this.availability();
  }

  async createSandbox(config: SandboxConfig): Promise<UserkernelSandbox> {
    refuseUnsupported(config);
    return new UserkernelSandbox(config);
  }
}

/**
 * What the userkernel cannot honour is refused, never ignored: it has no network (no socket
 * syscalls yet) and cannot bound CPU use. Only what the caller asked for is refused: the
 * fields stay unset unless a flag or an annotation sets them. memoryMiB is honoured (a
 * budget, see KernelOptions.memoryBudget).
 */
function refuseUnsupported(config: SandboxConfig): void {
  if (config.ports?.length) {
    throw new MoatError(
      "ENOTSUP",
      "the userkernel has no network yet, so it cannot forward ports: drop -p (annotation run.moat.ports), or use --isolation vm",
    );
  }
  if (config.network === "nat") {
    throw new MoatError(
      "ENOTSUP",
      "the userkernel has no network yet: drop --network nat (annotation run.moat.network), use --network none, or use --isolation vm",
    );
  }
  if (config.cpus !== undefined) {
    throw new MoatError(
      "ENOTSUP",
      "the userkernel cannot limit CPUs yet: drop --cpus (annotation run.moat.cpus), or use --isolation vm",
    );
  }
  if (config.memoryMiB !== undefined && !(Number.isInteger(config.memoryMiB) && config.memoryMiB >= 1)) {
    throw new MoatError("EINVAL", `memory ${config.memoryMiB} MiB is not a positive whole number of MiB`);
  }
}

export class UserkernelSandbox implements Sandbox {
  readonly isolation = "userkernel" as const;
  private readonly containers: ContainerTable<Container>;
  /** --memory: one budget for the application memory of all the sandbox's containers. */
  private readonly budget: MemoryBudget | undefined;
  constructor(private readonly config: SandboxConfig) {
    this.containers = new ContainerTable(config.id);
    if (config.memoryMiB !== undefined) this.budget = new MemoryBudget(config.memoryMiB * 2 ** 20);
  }

  get id(): string {
    return this.config.id;
  }

  async create(container: ContainerConfig): Promise<void> {
    const proc = this.containers.admit(container);
    if (proc.terminal || container.stdio.terminal) throw new MoatError("ENOTSUP", TERMINAL_REFUSED);
    if (container.spec.annotations?.[INIT_ANNOTATION] === "true")
      throw new MoatError(
        "ENOTSUP",
        `the userkernel has no init to put in front of the command yet: drop --init (annotation ${INIT_ANNOTATION}), or use --isolation vm`,
      );
    // A mount the kernel cannot do fails the create, not the start.
    planMounts(container.spec.mounts, container.bundle);
    this.containers.set(container.id, {
      config: container,
      init: { state: "created", abort: new AbortController(), queued: [] },
      execs: new Map(),
    });
  }

  async start(containerId: string): Promise<{ pid?: number }> {
    const c = this.containers.need(containerId);
    if (c.init.state !== "created")
      throw new MoatError("ESTATE", `container ${containerId} is ${c.init.state}, not created`);
    c.init.state = "running";
    let kernel: Kernel;
    try {
      kernel = await this.kernelOf(c);
    } catch (e) {
      c.init.state = "stopped";
      c.init.exit = Promise.reject(e);
      c.init.exit.catch(() => {});
      throw e;
    }
    const launched = this.launch(kernel, c.init, c.config.spec.process!, c.config.stdio, c.initPid);
    // The init's end is the container's: its execs were killed with it (pid namespace rules)
    // and no exec may start, so the kernel goes now, not at delete (gofer stopped, the
    // unimplemented-syscall report written).
    void c.init.exit?.catch(() => {}).finally(() => kernel.close());
    return launched;
  }

  /**
   * Another process in the container's kernel: the same VFS (files the init wrote, and the
   * reverse), pid namespace (/proc lists both; its getppid() is 0, as for runc's exec, whose
   * parent is outside the container), memory file and hostname; its own stub, address space,
   * descriptors and stdio.
   */
  async exec(exec: ExecConfig): Promise<{ pid?: number }> {
    const c = this.containers.need(exec.containerId);
    if (!exec.execId) throw new MoatError("EINVAL", "an exec needs an id: pass a non-empty execId");
    if (c.execs.has(exec.execId)) {
      throw new MoatError(
        "EEXIST",
        `exec ${exec.execId} already exists in container ${exec.containerId}: use another exec id`,
      );
    }
    if (c.init.state === "stopped") {
      throw new MoatError(
        "ESTATE",
        `container ${exec.containerId} is stopped: exec needs a created or running container`,
      );
    }
    if (exec.process.terminal || exec.stdio.terminal) throw new MoatError("ENOTSUP", TERMINAL_REFUSED);
    if (exec.process.args.length === 0)
      throw new MoatError("EINVAL", `exec ${exec.execId} has no process.args: say what it runs`);
    // Taken before the first await, so that two execs with one id cannot both pass the check.
    const p: Proc = { state: "running", abort: new AbortController(), queued: [] };
    c.execs.set(exec.execId, p);
    try {
      return await this.launch(await this.kernelOf(c), p, exec.process, exec.stdio);
    } catch (e) {
      // It never ran: the id is free again, as after a failed runc exec.
      c.execs.delete(exec.execId);
      throw e;
    }
  }

  async signal(containerId: string, signal: Signal, execId?: string): Promise<void> {
    const p = this.proc(containerId, execId);
    if (p.state !== "running") {
      throw new MoatError(
        "ESTATE",
        execId
          ? `exec ${execId} of container ${containerId} is not running`
          : `container ${containerId} is not running`,
      );
    }
    // Queued to the process as Linux queues a kill(2) (kernel/signals.ts): its handler runs,
    // or its default action (terminate, core, ignore, stop, continue) is taken.
    if (!p.handle) {
      // Its start is under way (kernel boot, program load): the signal acts once the program
      // is loaded, with every disposition still the default; KILL acts at once.
      if (signal === "SIGKILL") p.abort.abort();
      else p.queued.push(signal);
      return;
    }
    p.handle.signal(SignalNumbers[signal], signal);
  }

  async signalAll(containerId: string, signal: Signal): Promise<void> {
    const c = this.containers.need(containerId);
    if (c.init.state !== "running") throw new MoatError("ESTATE", `container ${containerId} is not running`);
    // Processes still starting take it as signal() queues it; the kernel's own, forked ones
    // included, get it now.
    if (!c.init.handle) await this.signal(containerId, signal);
    for (const [execId, p] of c.execs)
      if (p.state === "running" && !p.handle) await this.signal(containerId, signal, execId);
    const kernel = await c.kernel?.catch(() => undefined);
    kernel?.signalAll(SignalNumbers[signal]);
  }

  async wait(containerId: string, execId?: string): Promise<ExitStatus> {
    const p = this.proc(containerId, execId);
    if (!p.exit) throw new MoatError("ESTATE", `container ${containerId} has not been started`);
    return p.exit;
  }

  async closeStdin(containerId: string, execId?: string): Promise<void> {
    const p = this.proc(containerId, execId);
    if (p.stdin) {
      p.source?.unpipe(p.stdin);
      p.stdin.end();
    }
  }

  async resize(
    _containerId: string,
    _size: { width: number; height: number },
    _execId?: string,
  ): Promise<void> {
    throw new MoatError("ENOTSUP", "the userkernel has no terminal device yet");
  }

  /**
   * The host pids of the stubs that run a process now (for tests and host-side tools): an
   * execve replaces them, so no front door reports one as the process's pid.
   */
  hostPids(containerId: string, execId?: string): number[] {
    return this.proc(containerId, execId).handle?.hostPids() ?? [];
  }

  /** The init and the execs that run: their tasks' resident memory and CPU time (ProcessHandle.usage). */
  async stats(containerId: string): Promise<ContainerStats> {
    const c = this.containers.need(containerId);
    const total: ContainerStats = { memoryBytes: 0, cpuNanos: 0, pids: 0 };
    for (const p of [c.init, ...c.execs.values()]) {
      if (!p.handle || p.state !== "running") continue;
      const u = p.handle.usage();
      total.memoryBytes += u.memoryBytes;
      total.cpuNanos += u.cpuNanos;
      total.pids += u.tasks;
    }
    return total;
  }

  /**
   * Remove a container that is not running. Execs still running (of a created container;
   * those of a stopped one die with its init) are killed, as runc delete does, and reaped.
   */
  async delete(containerId: string): Promise<void> {
    const c = this.containers.need(containerId);
    if (c.init.state === "running")
      throw new MoatError("ESTATE", `container ${containerId} is running: kill it first`);
    this.containers.delete(containerId);
    await this.shutdown(c);
  }

  async destroy(): Promise<void> {
    const all = [...this.containers.values()];
    this.containers.clear();
    await Promise.all(all.map((c) => this.shutdown(c)));
  }

  /** Kill every process of the container, reap them all, stop its kernel. */
  private async shutdown(c: Container): Promise<void> {
    const procs = [c.init, ...c.execs.values()];
    for (const p of procs) if (p.state === "running") p.abort.abort();
    const kernel = await c.kernel?.catch(() => undefined);
    await kernel?.close();
    await Promise.allSettled(procs.map((p) => p.exit));
  }

  /** The container's kernel, booted on first use (start or exec). */
  private kernelOf(c: Container): Promise<Kernel> {
    if (!c.kernel) {
      const booting = Kernel.boot({
        rootfs: c.config.rootfs,
        ...(c.config.spec.mounts ? { mounts: c.config.spec.mounts } : {}),
        ...(c.config.spec.root?.readonly ? { readonlyRootfs: true } : {}),
        bundle: c.config.bundle,
        hostname: c.config.spec.hostname ?? "moat",
        ...(this.budget ? { memoryBudget: this.budget } : {}),
        debug: Boolean(this.config.debug),
      }).then((k) => {
        c.initPid = k.allocPid();
        return k;
      });
      c.kernel = booting;
      // A failed boot (bad rootfs) is the caller's error; the next call tries again.
      booting.catch(() => {
        if (c.kernel === booting) delete c.kernel;
      });
    }
    return c.kernel;
  }

  /** Run one process in the kernel; resolves once it runs (with its stub's host pid). */
  private async launch(
    kernel: Kernel,
    p: Proc,
    proc: Process,
    stdio: Stdio,
    pid?: number,
  ): Promise<{ pid?: number }> {
    if (stdio.stdin) {
      p.source = stdio.stdin as Readable;
      p.stdin = new PassThrough();
      p.source.pipe(p.stdin);
    }
    const spawning = kernel.spawn({
      binary: proc.args[0]!,
      argv: proc.args,
      env: proc.env ?? [],
      cwd: proc.cwd || "/",
      uid: proc.user.uid,
      gid: proc.user.gid,
      ...(proc.user.additionalGids ? { additionalGids: proc.user.additionalGids } : {}),
      ...(proc.user.umask !== undefined ? { umask: proc.user.umask } : {}),
      ...(proc.rlimits ? { rlimits: proc.rlimits } : {}),
      ...(p.stdin ? { stdin: p.stdin } : {}),
      stdout: (stdio.stdout as Writable | undefined) ?? discard(),
      stderr: (stdio.stderr as Writable | undefined) ?? discard(),
      signal: p.abort.signal,
      ...(pid !== undefined ? { pid } : {}),
    });
    const stderr = stdio.stderr as Writable | undefined;
    const started = spawning.then((h) => {
      p.handle = h;
      for (const q of p.queued.splice(0)) h.signal(SignalNumbers[q], q);
      return h;
    });
    p.exit = started
      .then((h) => h.wait())
      .then(toExitStatus, (e: unknown) => {
        // A program that cannot be run is the process's exit status, as docker reports it
        // and the vm's moat-creds exits (127 not found, 126 not runnable), with docker's
        // line on its stderr.
        if (!(e instanceof ExecError)) throw e;
        stderr?.write(`moat: ${e.brief}\n`);
        return { code: e.status, status: e.status, exitedAt: new Date() } satisfies ExitStatus;
      })
      .finally(() => {
        p.state = "stopped";
        if (p.stdin) p.source?.unpipe(p.stdin);
      });
    p.exit.catch(() => {}); // wait() reports it; a late failure must not crash the process
    // Any other failure before the program runs (a bad cwd) is the start's error.
    // A failed spawn settles the race through p.exit (an exit status, or the start's error).
    const never = new Promise<never>(() => {});
    await Promise.race([started.catch(() => never), p.exit]);
    // No host pid stands for a userkernel process: its stub is replaced at every execve and a
    // thread group may span several. As gVisor reports its sandbox, the front doors report
    // the host process that runs this kernel (the OCI monitor, the shim).
    return {};
  }

  /** The init (no execId) or an exec of a container. */
  private proc(containerId: string, execId?: string): Proc {
    return procOf(this.containers.need(containerId), containerId, execId);
  }
}

function toExitStatus(r: RunResult): ExitStatus {
  const exitedAt = new Date();
  if (r.code !== undefined) return { code: r.code, status: r.code, exitedAt };
  const signal = (r.signal ?? "SIGKILL") as Signal;
  return { signal: signal as NodeJS.Signals, status: 128 + (SignalNumbers[signal] ?? 9), exitedAt };
}

function discard(): Writable {
  return new PassThrough().resume();
}
