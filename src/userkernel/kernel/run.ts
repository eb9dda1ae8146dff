// Running one program under the userkernel (static, or dynamic with a rootfs), start to
// finish: a kernel of its own is booted (the gofer and the VFS with a rootfs), the program
// runs in it until it exits, and the kernel is shut down. Nothing outlives the run: the stub
// is killed and reaped, the memory file unmapped and closed, the gofer stopped, on success
// and on failure alike.
// Several processes in one kernel (a container's init and its execs) use Kernel directly.
import { Kernel, type KernelOptions, type ProcessOptions, type RunResult } from "./kernel.js";

export type { RunResult } from "./kernel.js";

export type RunOptions = KernelOptions &
  ProcessOptions & {
    /**
     * false: the program runs as PID 2 of a namespace with no init, as a process of a
     * container rather than its init (PID 1 ignores signals it has no handler for, SIGKILL
     * and SIGSTOP from outside aside, as on Linux). Default true.
     */
    init?: boolean;
  };

export async function runStatic(opts: RunOptions): Promise<RunResult> {
  const kernel = await Kernel.boot(opts);
  try {
    // PID 1 stays free, so the program (the next pid) is not the namespace's init.
    if (opts.init === false) kernel.allocPid();
    return await kernel.run(opts);
  } finally {
    await kernel.close();
  }
}
