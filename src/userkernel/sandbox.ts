// The userkernel as a Sandbox backend: each container's init process runs under moat's
// TypeScript kernel (runStatic), reading its rootfs only through the gofer. What the kernel
// cannot do yet is refused with a clear error, never faked: a second process in a running
// container (exec) needs fork/exec in the kernel, and terminals need a pty device.
import { readFileSync } from "node:fs";
import * as os from "node:os";
import { PassThrough, type Readable, type Writable } from "node:stream";
import { ContainerTable } from "../sandbox/containers.js";
import type { Sandbox, SandboxBackend } from "../sandbox/sandbox.js";
import { type Signal, SignalNumbers } from "../sandbox/signals.js";
import type {
  Availability,
  ContainerConfig,
  ContainerStats,
  ExecConfig,
  ExitStatus,
  SandboxConfig,
} from "../sandbox/types.js";
import { MoatError } from "../spec/errors.js";
import { type RunResult, runStatic } from "./kernel/run.js";

type State = "created" | "running" | "stopped";

interface Container {
  config: ContainerConfig;
  state: State;
  stdin?: PassThrough;
  abort: AbortController;
  hostPid?: number;
  exit?: Promise<ExitStatus>;
}

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

  async createSandbox(config: SandboxConfig): Promise<Sandbox> {
    return new UserkernelSandbox(config);
  }
}

class UserkernelSandbox implements Sandbox {
  readonly isolation = "userkernel" as const;
  private readonly containers: ContainerTable<Container>;
  constructor(private readonly config: SandboxConfig) {
    this.containers = new ContainerTable(config.id);
  }

  get id(): string {
    return this.config.id;
  }

  async create(container: ContainerConfig): Promise<void> {
    const proc = this.containers.admit(container);
    if (proc.terminal || container.stdio.terminal) {
      throw new MoatError(
        "ENOTSUP",
        "the userkernel has no terminal device yet: run without -t (stdio is passed as pipes)",
      );
    }
    this.containers.set(container.id, { config: container, state: "created", abort: new AbortController() });
  }

  async start(containerId: string): Promise<{ pid?: number }> {
    const c = this.containers.need(containerId);
    if (c.state !== "created")
      throw new MoatError("ESTATE", `container ${containerId} is ${c.state}, not created`);
    const { spec, rootfs, stdio } = c.config;
    const proc = spec.process!;
    // Our own stdin stream, so closeStdin() can end it without closing the caller's.
    if (stdio.stdin) {
      c.stdin = new PassThrough();
      (stdio.stdin as Readable).pipe(c.stdin);
    }
    let started: () => void = () => {};
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    c.state = "running";
    const run = runStatic({
      rootfs,
      binary: proc.args[0]!,
      argv: proc.args,
      env: proc.env ?? [],
      cwd: proc.cwd || "/",
      uid: proc.user.uid,
      gid: proc.user.gid,
      ...(proc.user.additionalGids ? { additionalGids: proc.user.additionalGids } : {}),
      ...(proc.user.umask !== undefined ? { umask: proc.user.umask } : {}),
      ...(c.stdin ? { stdin: c.stdin } : {}),
      stdout: (stdio.stdout as Writable | undefined) ?? discard(),
      stderr: (stdio.stderr as Writable | undefined) ?? discard(),
      hostname: spec.hostname ?? "moat",
      debug: Boolean(this.config.debug),
      signal: c.abort.signal,
      onStart: ({ hostPid }) => {
        c.hostPid = hostPid;
        started();
      },
    });
    c.exit = run.then(toExitStatus).finally(() => {
      c.state = "stopped";
    });
    c.exit.catch(() => {}); // wait() reports it; a late failure must not crash the process
    // A failure before the program runs (no such binary, not static) is the start's error.
    await Promise.race([running, c.exit]);
    return c.hostPid !== undefined ? { pid: c.hostPid } : {};
  }

  async exec(exec: ExecConfig): Promise<{ pid?: number }> {
    this.containers.need(exec.containerId);
    throw new MoatError(
      "ENOTSUP",
      "exec into a userkernel sandbox is not supported yet: the userkernel runs one process per container until fork/exec land",
    );
  }

  async signal(containerId: string, signal: Signal, execId?: string): Promise<void> {
    if (execId) throw new MoatError("ENOENT", `no process ${execId} in container ${containerId}`);
    const c = this.containers.need(containerId);
    if (c.state !== "running") throw new MoatError("ESTATE", `container ${containerId} is not running`);
    // Signal delivery to handlers is not built yet; every signal whose default action ends
    // the process ends it (reported as SIGKILL), the others are refused rather than dropped.
    const harmless: Signal[] = ["SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH"];
    if (harmless.includes(signal) || signal === "SIGSTOP" || signal === "SIGTSTP") {
      throw new MoatError(
        "ENOTSUP",
        `the userkernel cannot deliver ${signal} yet (only signals that end the process)`,
      );
    }
    c.abort.abort();
  }

  async wait(containerId: string, execId?: string): Promise<ExitStatus> {
    if (execId) throw new MoatError("ENOENT", `no process ${execId} in container ${containerId}`);
    const c = this.containers.need(containerId);
    if (!c.exit) throw new MoatError("ESTATE", `container ${containerId} has not been started`);
    return c.exit;
  }

  async closeStdin(containerId: string): Promise<void> {
    const c = this.containers.need(containerId);
    if (c.stdin) {
      (c.config.stdio.stdin as Readable | undefined)?.unpipe(c.stdin);
      c.stdin.end();
    }
  }

  async resize(): Promise<void> {
    throw new MoatError("ENOTSUP", "the userkernel has no terminal device yet");
  }

  async stats(containerId: string): Promise<ContainerStats> {
    const c = this.containers.need(containerId);
    if (c.hostPid === undefined || c.state !== "running") return { memoryBytes: 0, cpuNanos: 0, pids: 0 };
    try {
      const status = readFileSync(`/proc/${c.hostPid}/status`, "utf8");
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      const stat = readFileSync(`/proc/${c.hostPid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ticks = Number(fields[11]) + Number(fields[12]);
      return { memoryBytes: rss, cpuNanos: (ticks * 1e9) / 100, pids: 1 };
    } catch {
      return { memoryBytes: 0, cpuNanos: 0, pids: 0 };
    }
  }

  async delete(containerId: string): Promise<void> {
    const c = this.containers.need(containerId);
    if (c.state === "running")
      throw new MoatError("ESTATE", `container ${containerId} is running: kill it first`);
    this.containers.delete(containerId);
  }

  async destroy(): Promise<void> {
    for (const c of this.containers.values()) {
      if (c.state === "running") c.abort.abort();
    }
    await Promise.allSettled([...this.containers.values()].map((c) => c.exit));
    this.containers.clear();
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
