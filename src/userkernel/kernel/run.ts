// Running one static binary under the userkernel, start to finish: memory file, stub,
// loader, then the event loop (wait for a stop, serve the syscall, resume) until the
// program exits. Nothing outlives the run: the stub is killed and reaped, the memory file
// unmapped and closed, on success and on failure alike.
import { readFile } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import { signalName } from "../../sandbox/signals.js";
import { MoatError } from "../../spec/errors.js";
import { KernelError } from "../errno.js";
import { loadStatic } from "../loader/load.js";
import { AddressSpace } from "../mm/addrspace.js";
import { fixedLayout, randomLayout } from "../mm/layout.js";
import { MemoryFile } from "../mm/memfile.js";
import { PtracePlatform } from "../platform/ptrace.js";
import { dispatch } from "./dispatch.js";
import { FdTable } from "./fdtable.js";
import { StreamInput, StreamOutput } from "./hoststream.js";
import { type KernelInfo, Task } from "./task.js";

export interface RunOptions {
  /** The executable: its bytes, or a host path to read them from. */
  binary: Buffer | string;
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
  const image = typeof opts.binary === "string" ? await readFile(opts.binary) : opts.binary;
  const execfn = typeof opts.binary === "string" ? opts.binary : (opts.argv[0] ?? "/proc/self/exe");
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

  const mem = new MemoryFile(opts.memoryLimit ?? DEFAULT_MEMORY);
  let platform: PtracePlatform | undefined;
  const fds = new FdTable();
  let onAbort: (() => void) | undefined;
  try {
    platform = PtracePlatform.start(mem.fd);
    opts.onStart?.({ hostPid: platform.hostPid });
    const layout = opts.aslr === false ? fixedLayout() : randomLayout();
    const mm = new AddressSpace(mem, platform, platform.reserved, layout);
    let loaded: ReturnType<typeof loadStatic>;
    try {
      loaded = loadStatic(mm, {
        image,
        layout,
        argv: opts.argv,
        env: opts.env,
        execfn,
        uid: 0,
        euid: 0,
        gid: 0,
        egid: 0,
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
      const ev = await platform.run();
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
    if (kernel.unimplemented.size > 0) {
      const list = [...kernel.unimplemented].map(([n, c]) => `${n} x${c}`).join(", ");
      log(`moat userkernel: unimplemented syscalls (returned ENOSYS): ${list}`);
    }
  }
}
