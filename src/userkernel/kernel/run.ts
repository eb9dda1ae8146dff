// Running one program under the userkernel (static, or dynamic with a rootfs), start to
// finish: a kernel of its own is booted (the gofer and the VFS with a rootfs), the program
// runs in it until it exits, and the kernel is shut down. Nothing outlives the run: the stub
// is killed and reaped, the memory file unmapped and closed, the gofer stopped, on success
// and on failure alike.
// Several processes in one kernel (a container's init and its execs) use Kernel directly.
import { Kernel, type KernelOptions, type ProcessOptions, type RunResult } from "./kernel.js";

export type { RunResult } from "./kernel.js";

export type RunOptions = KernelOptions & ProcessOptions;

export async function runStatic(opts: RunOptions): Promise<RunResult> {
  const kernel = await Kernel.boot(opts);
  try {
    return await kernel.run(opts);
  } finally {
    await kernel.close();
  }
}
