// One kernel instance: what the processes of a container share. That is the gofer and the
// VFS (so a file one process writes into the in-memory overlay is there for the others),
// the pid namespace (one pid counter, one process table that /proc lists), the hostname,
// the syscall accounting and the memory budget. Each process has its own stub, memory file
// and descriptors and is driven by its own event loop (wait for a stop, serve the syscall,
// resume); the loops of several processes interleave on Node's one thread at their awaits.
//
// Not shared yet, because the kernel has no fork, no delivery to signal handlers and no
// cross-process kill: a process cannot signal another (kill(2) reaches only itself; a signal
// from outside takes its default action, outside-signal.ts), and nothing is inherited (each
// is started from the outside with its own stdio, as runc's exec is).

import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import { signalName } from "../../sandbox/signals.js";
import { MoatError } from "../../spec/errors.js";
import type { Mount, Rlimit } from "../../spec/runtime.js";
import { KernelError } from "../errno.js";
import { GoferClient } from "../gofer/client.js";
import { loadStatic } from "../loader/load.js";
import { AddressSpace } from "../mm/addrspace.js";
import { fixedLayout, randomLayout } from "../mm/layout.js";
import { MemoryBudget, MemoryFile } from "../mm/memfile.js";
import { memoryFigures } from "../mm/usage.js";
import { PtracePlatform } from "../platform/ptrace.js";
import { type ProcessView, Vfs } from "../vfs/index.js";
import { dispatch } from "./dispatch.js";
import { containerProgram, ExecError, hostProgram, type Program } from "./exec.js";
import { FdTable } from "./fdtable.js";
import { StreamInput, StreamOutput } from "./hoststream.js";
import { applyMounts, planMounts, volumeRoots } from "./mounts.js";
import { type OutsideSignal, outsideSignal } from "./outside-signal.js";
import { applyRlimits, processView } from "./setup.js";
import { type KernelInfo, Task } from "./task.js";

export interface KernelOptions {
  /**
   * The container's root file system on the host (a bundle's rootfs). The gofer serves it
   * and the programs see it as "/"; without it, path-based file syscalls fail with ENOSYS.
   */
  rootfs?: string;
  /**
   * The runtime spec's mounts, applied in order over the rootfs before any process runs
   * (bind mounts through the gofer, tmpfs in memory; see mounts.ts). Needs a rootfs.
   */
  mounts?: Mount[];
  /** The runtime spec's root.readonly: "/" refuses changes with EROFS once the mounts are made. */
  readonlyRootfs?: boolean;
  /** The bundle directory relative bind sources start from (default: the rootfs's parent). */
  bundle?: string;
  hostname?: string;
  /**
   * The sandbox's memory budget in bytes (--memory): the application memory all its processes
   * may map together (ENOMEM beyond), what each tmpfs and the overlay may hold, and the
   * MemTotal its programs see; a MemoryBudget object is shared with other kernels (the
   * containers of one sandbox). Default: no budget, the host's memory.
   */
  memoryBudget?: number | MemoryBudget;
  /** Trace every syscall to `log`. */
  debug?: boolean;
  /** Where traces and the unimplemented-syscall report go (default: the host's stderr). */
  log?: (line: string) => void;
}

export interface ProcessOptions {
  /**
   * The executable. With a rootfs: a path in the container (a name without "/" is searched
   * in the PATH of `env`, as execvp does). Without: its bytes, or a host path to read them from.
   */
  binary: Buffer | string;
  /** The working directory in the container (default "/"; needs a rootfs). */
  cwd?: string;
  /** The process's user and groups (default root, no supplementary groups). */
  uid?: number;
  gid?: number;
  additionalGids?: number[];
  /** The file mode creation mask (default 0o022). */
  umask?: number;
  /** Resource limits, as the OCI spec lists them (type "RLIMIT_NOFILE" etc.). */
  rlimits?: Rlimit[];
  argv: string[];
  env: string[];
  /** Without stdin the program reads EOF. */
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /** Upper bound of the application's memory in bytes, a multiple of 1 GiB (default 16 GiB, sparse). */
  memoryLimit?: number;
  /** Randomise the address-space layout as Linux does (default); false gives fixed addresses. */
  aslr?: boolean;
  /** Aborting kills the program (reported as SIGKILL), even while it waits inside the kernel. */
  signal?: AbortSignal;
  /**
   * Called once the program is loaded and about to run: its stub's host pid (tests,
   * diagnostics, stats), and how to send it a signal from outside the container (Linux's
   * default actions; see outside-signal.ts for what is refused).
   */
  onStart?: (info: { hostPid: number; signal: (sig: number, name: string) => OutsideSignal }) => void;
  /** Its pid in the kernel, from allocPid() (default: the next free one). */
  pid?: number;
}

export interface RunResult {
  code?: number;
  signal?: string;
  /** Unimplemented syscalls the programs of the kernel made, by name, with how often. */
  unimplemented: Map<string, number>;
}

const DEFAULT_MEMORY = 16 * 2 ** 30;
const SIGKILL = 9;
/** Linux's init of a pid namespace: when it ends, every other process of the namespace is killed. */
const INIT_PID = 1;

interface Running {
  kill: () => void;
  done: Promise<unknown>;
}

export class Kernel {
  /** What /proc lists: the live processes by pid. */
  private readonly views = new Map<number, ProcessView>();
  private readonly running = new Set<Running>();
  private lastPid = 0;
  private closed: Promise<void> | undefined;

  private constructor(
    readonly info: KernelInfo,
    readonly vfs: Vfs | undefined,
    private readonly gofer: GoferClient | undefined,
  ) {
    info.processCount = () => this.running.size;
    if (vfs) {
      vfs.processes = {
        get: (pid) => this.views.get(pid),
        pids: () => [...this.views.keys()].sort((x, y) => x - y),
      };
    }
  }

  /** Start the gofer and build the VFS (with a rootfs); nothing runs yet. */
  static async boot(opts: KernelOptions = {}): Promise<Kernel> {
    const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    const info: KernelInfo = {
      hostname: opts.hostname ?? "moat",
      domainname: "(none)",
      bootRealtimeNs: BigInt(Date.now()) * 1_000_000n,
      bootHrtimeNs: process.hrtime.bigint(),
      unimplemented: new Map(),
      log,
      debug: opts.debug ?? false,
      ...(opts.memoryBudget !== undefined
        ? {
            budget:
              typeof opts.memoryBudget === "number" ? new MemoryBudget(opts.memoryBudget) : opts.memoryBudget,
          }
        : {}),
    };
    if (opts.rootfs === undefined) {
      if (opts.mounts?.length)
        throw new MoatError("EINVAL", "mounts need a rootfs: pass rootfs too, or leave mounts out");
      return new Kernel(info, undefined, undefined);
    }
    const steps = planMounts(opts.mounts, opts.bundle ?? path.dirname(path.resolve(opts.rootfs)));
    const gofer = await GoferClient.start(opts.rootfs, volumeRoots(steps));
    try {
      const budget = info.budget;
      const vfs = await Vfs.create({
        gofer,
        memory: () => memoryFigures(budget),
        bootRealtimeS: Number(info.bootRealtimeNs / 1_000_000n) / 1000,
        ...(budget ? { memoryLimit: budget.limit } : {}),
      });
      await applyMounts(vfs, gofer, steps);
      if (opts.readonlyRootfs) vfs.makeRootReadOnly();
      return new Kernel(info, vfs, gofer);
    } catch (e) {
      await gofer.close().catch(() => {});
      throw e;
    }
  }

  /** A pid no process of this kernel has had (they are not reused). */
  allocPid(): number {
    return ++this.lastPid;
  }

  /** Kill every process (each run then resolves as killed by SIGKILL). */
  killAll(): void {
    for (const r of this.running) r.kill();
  }

  /**
   * Kill every process, wait for each to be reaped, then stop the gofer and report the
   * unimplemented syscalls. Idempotent; no process may start afterwards.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.killAll();
      await Promise.allSettled([...this.running].map((r) => r.done));
      // The gofer goes last: open descriptions held host descriptors it handed out.
      await this.gofer
        ?.close()
        .catch((e: Error) => this.info.log(`moat userkernel: stopping the gofer failed: ${e.message}`));
      const un = this.info.unimplemented;
      if (un.size > 0) {
        const list = [...un].map(([n, c]) => `${n} x${c}`).join(", ");
        this.info.log(`moat userkernel: unimplemented syscalls (returned ENOSYS): ${list}`);
      }
    })();
    return this.closed;
  }

  /** Run one program in this kernel, start to finish. */
  async run(opts: ProcessOptions): Promise<RunResult> {
    if (this.closed)
      throw new MoatError("ESTATE", "this userkernel is shut down: no process can start in it");
    if (this.vfs === undefined && opts.cwd !== undefined) {
      throw new MoatError("EINVAL", "cwd needs a rootfs: pass rootfs too, or leave cwd out");
    }
    const pid = opts.pid ?? this.allocPid();
    let kill: () => void = () => {};
    const killed = new Promise<void>((resolve) => {
      kill = resolve;
    });
    const entry: Running = { kill, done: Promise.resolve() };
    const done = this.runProcess(opts, pid, killed);
    entry.done = done;
    this.running.add(entry);
    try {
      return await done;
    } finally {
      this.running.delete(entry);
      if (pid === INIT_PID) this.killAll();
    }
  }

  private async runProcess(opts: ProcessOptions, pid: number, killed: Promise<void>): Promise<RunResult> {
    const kernel = this.info;
    const vfs = this.vfs;
    const uid = opts.uid ?? 0;
    const gid = opts.gid ?? 0;
    const groups = [...(opts.additionalGids ?? [])];
    const mem = new MemoryFile(opts.memoryLimit ?? DEFAULT_MEMORY, kernel.budget);
    let platform: PtracePlatform | undefined;
    const fds = new FdTable();
    let onAbort: (() => void) | undefined;
    let wasKilled = false;
    void killed.then(() => {
      wasKilled = true;
      onAbort?.();
    });
    try {
      let program: Program;
      if (vfs) program = await containerProgram(vfs, opts, { uid, gid, groups }, pid);
      else program = await hostProgram(opts);
      const { image, execfn } = program;
      platform = PtracePlatform.start(mem.fd);
      const layout = opts.aslr === false ? fixedLayout() : randomLayout();
      const mm = new AddressSpace(mem, platform, platform.reserved, layout);
      let loaded: ReturnType<typeof loadStatic>;
      try {
        loaded = loadStatic(mm, {
          image,
          layout,
          argv: program.argv,
          env: opts.env,
          execfn,
          uid,
          euid: uid,
          gid,
          egid: gid,
        });
      } catch (e) {
        if (!(e instanceof KernelError)) throw e;
        const why = e.message.replace(/^E[A-Z]+: /, "");
        const dynamic = why.startsWith("dynamically linked");
        throw new ExecError(
          "ENOTSUP",
          126,
          dynamic
            ? `exec: ${JSON.stringify(execfn)}: ${why.replace(/;.*/, "")}: the userkernel runs static executables only yet: use a static build (gcc -static) or --isolation vm`
            : e.code === "ENOMEM"
              ? `exec: ${JSON.stringify(execfn)}: cannot allocate memory (${why})`
              : `exec: ${JSON.stringify(execfn)}: exec format error (${why})`,
          `cannot run ${execfn} in the userkernel: ${e.message}. Use a static x86-64 Linux executable (for C: gcc -static)`,
          { cause: e },
        );
      }
      platform.setEntry(loaded.entry, loaded.sp);

      fds.installAt(0, new StreamInput(opts.stdin));
      fds.installAt(1, new StreamOutput(opts.stdout ?? process.stdout));
      fds.installAt(2, new StreamOutput(opts.stderr ?? process.stderr));
      const task = new Task(kernel, platform, mm, fds, pid);
      task.comm = (execfn.split("/").pop() ?? "").slice(0, 15);
      task.creds = { uid, euid: uid, suid: uid, gid, egid: gid, sgid: gid };
      task.groups = groups;
      task.umask = (opts.umask ?? 0o022) & 0o777;
      task.exe = program.exe;
      task.cmdline = program.argv;
      task.layout = layout;
      applyRlimits(task, opts.rlimits ?? []);
      if (vfs) {
        task.vfs = vfs;
        task.cwd = program.cwd;
      }
      // Killing from now on ends the task and its stub, and interrupts the block a handler
      // sleeps in (kernel/wait.ts), so the handler ends at once and the loop sees the exit.
      const stub = platform;
      const terminate = (signal: number): void => {
        task.exit({ signal });
        stub.kill();
        task.interrupt();
      };
      onAbort = () => terminate(SIGKILL);
      if (opts.signal?.aborted || wasKilled) onAbort();
      else opts.signal?.addEventListener("abort", onAbort, { once: true });
      opts.onStart?.({
        hostPid: platform.hostPid,
        signal: (sig, name) => {
          if (task.exitStatus) return { action: "ignore" };
          const o = outsideSignal(task, sig, name);
          if (o.action !== "pending" && o.unhandled) {
            kernel.log(
              `moat userkernel: pid ${pid} has a handler for ${name}, which the userkernel cannot run yet: ${o.action === "terminate" ? `${name} ended it, as its default action would` : `${name} was ignored, as its default action would be`}`,
            );
          }
          if (o.action === "terminate") terminate(o.signal);
          return o;
        },
      });
      if (vfs) this.views.set(pid, processView(task, vfs, platform.hostPid));
      try {
        return await this.loop(task, platform);
      } finally {
        this.views.delete(pid);
      }
    } finally {
      if (onAbort) opts.signal?.removeEventListener("abort", onAbort);
      platform?.kill();
      fds.closeAll();
      mem.close();
    }
  }

  /** The event loop of one process: wait for a stop, serve it, resume, until it exits. */
  private async loop(task: Task, platform: PtracePlatform): Promise<RunResult> {
    while (!task.exitStatus) {
      let ev: Awaited<ReturnType<PtracePlatform["run"]>>;
      try {
        ev = await platform.run();
      } catch (e) {
        // An abort kills the stub while a wait is in flight: a stop reported just before
        // the kill then finds no process to read registers from. The run is over anyway.
        if (task.exitStatus) break;
        throw e;
      }
      if (task.exitStatus) break;
      switch (ev.kind) {
        case "syscall": {
          // A handler may wait (stdin, sleep) in a block a kill interrupts. Most are
          // synchronous and return no promise at all.
          const serving = dispatch(task);
          if (serving) await serving;
          break;
        }
        case "signal":
          // No signal delivery yet: a fault or trap the program incurs ends it, as the
          // default action of SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP would.
          task.exit({ signal: ev.signal });
          break;
        case "killed":
          task.exit({ signal: ev.signal });
          break;
        case "exited":
          // The stub never exits by itself; if it did, report it as killed by the host.
          task.exit({ signal: 9 });
          break;
      }
    }

    const result: RunResult = { unimplemented: this.info.unimplemented };
    const st = task.exitStatus;
    if ("code" in st) result.code = st.code;
    else result.signal = signalName(st.signal) ?? `SIG${st.signal}`;
    return result;
  }
}
