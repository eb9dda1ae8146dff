// Running one static binary under the userkernel, start to finish: with a rootfs, the gofer
// and the VFS first and the program found in them; then memory file, stub, loader, and the
// event loop (wait for a stop, serve the syscall, resume) until the program exits. Nothing
// outlives the run: the stub is killed and reaped, the memory file unmapped and closed, the
// gofer stopped, on success and on failure alike.
import type { Readable, Writable } from "node:stream";
import { signalName } from "../../sandbox/signals.js";
import { MoatError } from "../../spec/errors.js";
import type { Rlimit } from "../../spec/runtime.js";
import { KernelError } from "../errno.js";
import { GoferClient } from "../gofer/client.js";
import { loadStatic } from "../loader/load.js";
import { AddressSpace } from "../mm/addrspace.js";
import { fixedLayout, randomLayout } from "../mm/layout.js";
import { MemoryFile } from "../mm/memfile.js";
import { PtracePlatform } from "../platform/ptrace.js";
import { Vfs } from "../vfs/index.js";
import { dispatch } from "./dispatch.js";
import { containerProgram, hostProgram, type Program } from "./exec.js";
import { FdTable } from "./fdtable.js";
import { StreamInput, StreamOutput } from "./hoststream.js";
import { applyRlimits, processesOf } from "./setup.js";
import { type KernelInfo, Task } from "./task.js";

export interface RunOptions {
  /**
   * The executable. With `rootfs`: a path in the container (a name without "/" is searched
   * in the PATH of `env`, as execvp does). Without: its bytes, or a host path to read them from.
   */
  binary: Buffer | string;
  /**
   * The container's root file system on the host (a bundle's rootfs). The gofer serves it
   * and the program sees it as "/"; without it, path-based file syscalls fail with ENOSYS.
   */
  rootfs?: string;
  /** The working directory in the container (default "/"; needs `rootfs`). */
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
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  hostname?: string;
  /** Trace every syscall to `log`. */
  debug?: boolean;
  /** Where traces and the unimplemented-syscall report go (default: the host's stderr). */
  log?: (line: string) => void;
  /** Upper bound of the application's memory in bytes, a multiple of 1 GiB (default 16 GiB, sparse). */
  memoryLimit?: number;
  /** Randomise the address-space layout as Linux does (default); false gives fixed addresses. */
  aslr?: boolean;
  /** Aborting kills the program (reported as SIGKILL), even while it waits inside the kernel. */
  signal?: AbortSignal;
  /** Called with the stub's host pid once it exists (tests and diagnostics). */
  onStart?: (info: { hostPid: number }) => void;
}

export interface RunResult {
  code?: number;
  signal?: string;
  /** Unimplemented syscalls the program made, by name, with how often. */
  unimplemented: Map<string, number>;
}

const DEFAULT_MEMORY = 16 * 2 ** 30;

export async function runStatic(opts: RunOptions): Promise<RunResult> {
  if (opts.rootfs === undefined && opts.cwd !== undefined) {
    throw new MoatError("EINVAL", "cwd needs a rootfs: pass rootfs too, or leave cwd out");
  }
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const kernel: KernelInfo = {
    hostname: opts.hostname ?? "moat",
    domainname: "(none)",
    bootRealtimeNs: BigInt(Date.now()) * 1_000_000n,
    bootHrtimeNs: process.hrtime.bigint(),
    unimplemented: new Map(),
    log,
    debug: opts.debug ?? false,
  };

  const uid = opts.uid ?? 0;
  const gid = opts.gid ?? 0;
  const groups = [...(opts.additionalGids ?? [])];
  const mem = new MemoryFile(opts.memoryLimit ?? DEFAULT_MEMORY);
  let platform: PtracePlatform | undefined;
  let gofer: GoferClient | undefined;
  let vfs: Vfs | undefined;
  const fds = new FdTable();
  let onAbort: (() => void) | undefined;
  try {
    let program: Program;
    if (opts.rootfs !== undefined) {
      gofer = await GoferClient.start(opts.rootfs);
      vfs = await Vfs.create({ gofer });
      program = await containerProgram(vfs, opts, { uid, gid, groups });
    } else program = await hostProgram(opts);
    const { image, execfn } = program;
    platform = PtracePlatform.start(mem.fd);
    opts.onStart?.({ hostPid: platform.hostPid });
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
      throw new MoatError(
        e.code === "ENOEXEC" ? "ENOTSUP" : "EINVAL",
        `cannot run ${execfn} in the userkernel: ${e.message}. Use a static x86-64 Linux executable (for C: gcc -static)`,
        { cause: e },
      );
    }
    platform.setEntry(loaded.entry, loaded.sp);

    fds.installAt(0, new StreamInput(opts.stdin));
    fds.installAt(1, new StreamOutput(opts.stdout ?? process.stdout));
    fds.installAt(2, new StreamOutput(opts.stderr ?? process.stderr));
    const task = new Task(kernel, platform, mm, fds);
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
      vfs.processes = processesOf(task, vfs);
    }

    const stub = platform;
    let wake: () => void = () => {};
    const aborted = new Promise<"aborted">((resolve) => {
      wake = () => resolve("aborted");
    });
    onAbort = () => {
      task.exit({ signal: 9 });
      stub.kill();
      wake();
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });

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
          // A handler may wait (stdin, sleep); an abort must not wait for it.
          const serving = dispatch(task);
          if ((await Promise.race([serving, aborted])) === "aborted") serving.catch(() => {});
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

    const result: RunResult = { unimplemented: kernel.unimplemented };
    const st = task.exitStatus;
    if ("code" in st) result.code = st.code;
    else result.signal = signalName(st.signal) ?? `SIG${st.signal}`;
    return result;
  } finally {
    if (onAbort) opts.signal?.removeEventListener("abort", onAbort);
    platform?.kill();
    fds.closeAll();
    mem.close();
    // The gofer goes last: open descriptions hold host descriptors it handed out.
    await gofer?.close().catch((e: Error) => log(`moat userkernel: stopping the gofer failed: ${e.message}`));
    if (kernel.unimplemented.size > 0) {
      const list = [...kernel.unimplemented].map(([n, c]) => `${n} x${c}`).join(", ");
      log(`moat userkernel: unimplemented syscalls (returned ENOSYS): ${list}`);
    }
  }
}
