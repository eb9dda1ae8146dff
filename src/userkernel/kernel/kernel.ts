// One kernel instance: what the processes of a container share. That is the gofer and the
// VFS (so a file one process writes into the in-memory overlay is there for the others),
// the pid namespace (pidns.ts: one pid counter, the tasks and thread groups /proc lists),
// the one memory file every address space allocates from, the platform that makes host
// address spaces, the hostname, the syscall accounting and the memory budget. Processes
// started from outside (spawn: the container's init and each exec) and those they fork or
// clone (clone.ts, started through KernelInfo.startTask) each run their tasks' run loops
// (task-run.ts), which interleave on Node's one thread at their awaits; the kernel tracks
// both kinds, kills them all when init ends or at close, and waits for them.
//
// Processes fork, exec and signal each other across the pid namespace; a signal from
// outside is sent as a kill(2) is (signals.ts).

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
import { CpuState, type Platform } from "../platform/platform.js";
import { PtracePlatformFactory } from "../platform/ptrace.js";
import { Vfs } from "../vfs/index.js";
import { containerProgram, ExecError, hostProgram, type Program } from "./exec.js";
import { FdTable } from "./fdtable.js";
import { FsContext } from "./fs-context.js";
import { StreamInput, StreamOutput } from "./hoststream.js";
import { applyMounts, planMounts, volumeRoots } from "./mounts.js";
import { PidNamespace } from "./pidns.js";
import { noteInitialStack } from "./proc-state.js";
import { type ProcessHandle, processHandle, type RunResult } from "./process-handle.js";
import { processView, rlimitsOf } from "./setup.js";
import { killGroup, type OutsideSignal, signalFromOutside } from "./signals.js";
import { SignalHandlers } from "./signals-state.js";
import { type KernelInfo, newTask, type Task } from "./task.js";
import { runTask } from "./task-run.js";
import { type ExitStatus, waitStatus } from "./thread-group.js";

export type { ProcessHandle, ProcessUsage, RunResult } from "./process-handle.js";

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
  /**
   * Upper bound of the application memory of all the kernel's processes together, a multiple
   * of 1 GiB (default 64 GiB; the memory file is sparse, so only what is touched costs).
   */
  memoryLimit?: number;
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
  /** Randomise the address-space layout as Linux does (default); false gives fixed addresses. */
  aslr?: boolean;
  /** Aborting kills the program (reported as SIGKILL), even while it waits inside the kernel. */
  signal?: AbortSignal;
  /**
   * Called once the program is loaded and about to run: its stub's host pid (tests,
   * diagnostics, stats), and how to send it a signal from outside the container (as a
   * kill(2) from outside its pid namespace, signals.ts). spawn's handle offers the same.
   */
  onStart?: (info: { hostPid: number; signal: (sig: number, name: string) => OutsideSignal }) => void;
  /** Its pid in the kernel, from allocPid() (default: the next free one). */
  pid?: number;
}

const DEFAULT_MEMORY = 64 * 2 ** 30;
const SIGKILL = 9;
/** Linux's init of a pid namespace: when it ends, every other process of the namespace is killed. */
const INIT_PID = 1;

interface Running {
  kill: () => void;
  done: Promise<unknown>;
}

/**
 * The kernel keeps a program's strings (paths, arguments, environment) as byte strings
 * (latin1: one char per byte), so any bytes a program passes survive; the caller's are text,
 * so they go in as their UTF-8 bytes.
 */
function asByteStrings(o: ProcessOptions): ProcessOptions {
  const bytes = (s: string) => Buffer.from(s, "utf8").toString("latin1");
  return {
    ...o,
    argv: o.argv.map(bytes),
    env: o.env.map(bytes),
    ...(typeof o.binary === "string" ? { binary: bytes(o.binary) } : {}),
    ...(o.cwd !== undefined ? { cwd: bytes(o.cwd) } : {}),
  };
}

export class Kernel {
  /** Every task and thread group by id; /proc lists it. */
  readonly pidns = new PidNamespace<Task>();
  private readonly running = new Set<Running>();
  /** The run loops of tasks made inside the kernel (fork, clone), until they end. */
  private readonly cloned = new Set<Promise<void>>();
  private closed: Promise<void> | undefined;
  /** Makes the host address spaces (stubs) and threads that run application code. */
  readonly platform: Platform = new PtracePlatformFactory();

  private constructor(
    readonly info: KernelInfo,
    readonly vfs: Vfs | undefined,
    private readonly gofer: GoferClient | undefined,
    /** The application memory of every process: one file, so that processes can share pages. */
    readonly mem: MemoryFile,
  ) {
    info.processCount = () => this.pidns.size;
    info.startTask = (task) => this.startCloned(task);
    info.platform = this.platform;
    if (vfs) {
      vfs.processes = {
        get: (pid) => {
          const g = this.pidns.group(pid);
          return g ? processView(g, vfs) : undefined;
        },
        // A zombie keeps its pid but has no /proc entry yet (processView needs a live task).
        pids: () => this.pidns.groupList().flatMap((g) => (g.leader ? [g.tgid] : [])),
      };
    }
  }

  /** Start the gofer and build the VFS (with a rootfs) and the memory file; nothing runs yet. */
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
      return new Kernel(
        info,
        undefined,
        undefined,
        new MemoryFile(opts.memoryLimit ?? DEFAULT_MEMORY, info.budget),
      );
    }
    const steps = planMounts(opts.mounts, opts.bundle ?? path.dirname(path.resolve(opts.rootfs)));
    const gofer = await GoferClient.start(opts.rootfs, volumeRoots(steps));
    let mem: MemoryFile | undefined;
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
      mem = new MemoryFile(opts.memoryLimit ?? DEFAULT_MEMORY, budget);
      return new Kernel(info, vfs, gofer, mem);
    } catch (e) {
      mem?.close();
      await gofer.close().catch(() => {});
      throw e;
    }
  }

  /** A pid no process of this kernel has had (they are not reused). */
  allocPid(): number {
    return this.pidns.alloc();
  }

  /** A signal from outside to every process of the kernel, as to each by kill(2) (signalFromOutside). */
  signalAll(sig: number): void {
    for (const g of this.pidns.groupList()) signalFromOutside(g, sig);
  }

  /** Kill every process (each then ends as killed by SIGKILL). */
  killAll(): void {
    for (const r of this.running) r.kill();
    for (const g of this.pidns.groupList()) killGroup(g, { signal: SIGKILL });
  }

  /** Run a task that clone or fork made; a shut-down kernel kills it before it runs. */
  private startCloned(task: Task): void {
    if (this.closed) killGroup(task.group, { signal: SIGKILL });
    const done: Promise<void> = runTask(task)
      .catch((e: Error) => {
        this.info.log(`moat userkernel: pid ${task.group.tgid} failed: ${e.message}`);
        killGroup(task.group, { signal: SIGKILL });
      })
      .finally(() => this.cloned.delete(done));
    this.cloned.add(done);
  }

  /**
   * Kill every process, wait for each to be reaped, then stop the gofer, close the memory
   * file and report the unimplemented syscalls. Idempotent; no process may start afterwards.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.killAll();
      await Promise.allSettled([...this.running].map((r) => r.done));
      // Killed with the rest; a fork racing the kill is killed as it starts (startCloned).
      while (this.cloned.size > 0) await Promise.allSettled([...this.cloned]);
      this.mem.close();
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

  /** Run one program in this kernel, start to finish: spawn, then wait. */
  async run(opts: ProcessOptions): Promise<RunResult> {
    return (await this.spawn(opts)).wait();
  }

  /**
   * Start one program in this kernel: resolves once it is loaded and about to run, with the
   * handle to signal it, wait for it and measure it; rejects if it cannot be started (an
   * ExecError for a program that cannot be run).
   */
  async spawn(opts: ProcessOptions): Promise<ProcessHandle> {
    if (this.closed)
      throw new MoatError("ESTATE", "this userkernel is shut down: no process can start in it");
    if (this.vfs === undefined && opts.cwd !== undefined) {
      throw new MoatError("EINVAL", "cwd needs a rootfs: pass rootfs too, or leave cwd out");
    }
    const pid = opts.pid ?? this.allocPid();
    // Killing (close, killAll, the abort signal) may come while the program loads: it then
    // acts as soon as the task exists.
    let task: Task | undefined;
    let killed = false;
    const kill = (): void => {
      killed = true;
      if (task) killGroup(task.group, { signal: SIGKILL });
    };
    const entry: Running = { kill, done: Promise.resolve() };
    const onAbort = (): void => kill();
    const unlisten = (): void => opts.signal?.removeEventListener("abort", onAbort);
    this.running.add(entry);
    if (opts.signal?.aborted) killed = true;
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      task = await this.newProcess(opts, pid);
    } catch (e) {
      unlisten();
      this.running.delete(entry);
      throw e;
    }
    const group = task.group;
    // PID 1 is the namespace's init, with Linux's protection from signals (ThreadGroup.unkillable).
    if (group.tgid === INIT_PID) group.unkillable = true;
    if (killed) killGroup(group, { signal: SIGKILL });
    // The handle exists (and onStart has run) before the program runs its first instruction.
    let done: Promise<ExitStatus> | undefined;
    const handle = processHandle(group, () => done!.then((st) => this.result(st)));
    opts.onStart?.({ hostPid: task.mm.hostPid, signal: (sig, name) => handle.signal(sig, name) });
    done = runTask(task)
      .then(() => group.whenZombie())
      .finally(() => {
        unlisten();
        this.running.delete(entry);
        if (group.tgid === INIT_PID) this.killAll();
      });
    entry.done = done;
    done.catch(() => {}); // wait() reports it; nobody may be waiting
    return handle;
  }

  private result(st: ExitStatus): RunResult {
    const result: RunResult = { waitStatus: waitStatus(st), unimplemented: this.info.unimplemented };
    if ("code" in st) result.code = st.code;
    else result.signal = signalName(st.signal) ?? `SIG${st.signal}`;
    return result;
  }

  /** Load the program into a new address space and build the process's first task. */
  private async newProcess(given: ProcessOptions, pid: number): Promise<Task> {
    const opts = asByteStrings(given);
    const vfs = this.vfs;
    const uid = opts.uid ?? 0;
    const gid = opts.gid ?? 0;
    const groups = [...(opts.additionalGids ?? [])];
    const fds = new FdTable();
    const rlimits = rlimitsOf(opts.rlimits ?? [], fds);
    let program: Program;
    if (vfs) program = await containerProgram(vfs, opts, { uid, gid, groups }, pid);
    else program = await hostProgram(opts);
    const { image, execfn } = program;
    const host = this.platform.newAddressSpace(this.mem.fd);
    const ctx = host.newContext();
    const cpu = new CpuState();
    const layout = opts.aslr === false ? fixedLayout() : randomLayout();
    const mm = new AddressSpace(this.mem, host, host.reserved, layout);
    try {
      let loaded: ReturnType<typeof loadStatic>;
      try {
        loaded = loadStatic(mm, {
          image,
          interp: program.interp,
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
            ? `exec: ${JSON.stringify(execfn)}: ${why.replace(/,.*/, "")}: needs a rootfs`
            : e.code === "ENOMEM"
              ? `exec: ${JSON.stringify(execfn)}: cannot allocate memory (${why})`
              : `exec: ${JSON.stringify(execfn)}: exec format error (${why})`,
          `cannot run ${execfn} in the userkernel: ${e.message}. Use an x86-64 Linux executable (dynamic ones need a rootfs with their libraries)`,
          { cause: e },
        );
      }
      cpu.setEntry(loaded.entry, loaded.sp);
    } catch (e) {
      mm.unref(); // releases the host address space too
      throw e;
    }
    fds.installAt(0, new StreamInput(opts.stdin));
    fds.installAt(1, new StreamOutput(opts.stdout ?? process.stdout));
    fds.installAt(2, new StreamOutput(opts.stderr ?? process.stderr));
    const task = newTask({
      kernel: this.info,
      pidns: this.pidns,
      tid: pid,
      group: { fresh: { exe: program.exe, cmdline: program.argv, layout, rlimits } },
      cpu,
      ctx,
      mm: { fresh: mm },
      fds: { fresh: fds },
      fs: {
        fresh: new FsContext(vfs, vfs ? program.cwd : undefined, undefined, (opts.umask ?? 0o022) & 0o777),
      },
      sighand: { fresh: new SignalHandlers() },
      creds: { uid, euid: uid, suid: uid, gid, egid: gid, sgid: gid },
      groups,
      comm: execfn.split("/").pop() ?? "",
    });
    // While the registers still hold the entry stack pointer: where /proc finds environ.
    noteInitialStack(task);
    return task;
  }
}
