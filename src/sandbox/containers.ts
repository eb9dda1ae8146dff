// The containers of one sandbox, by id, with the checks every backend makes the same way.
import { MoatError } from "../spec/errors.js";
import type { Process } from "../spec/runtime.js";
import type { ContainerConfig } from "./types.js";

/**
 * A container's init (no execId) or one of its execs, for backends whose table entries keep
 * them as `init` and `execs`.
 */
export function procOf<P>(c: { init: P; execs: Map<string, P> }, containerId: string, execId?: string): P {
  if (!execId) return c.init;
  const p = c.execs.get(execId);
  if (!p) throw new MoatError("ENOENT", `exec ${execId} does not exist in container ${containerId}`);
  return p;
}

export class ContainerTable<T> extends Map<string, T> {
  constructor(readonly sandboxId: string) {
    super();
  }

  /** The container with this id, or ENOENT. */
  need(id: string): T {
    const c = this.get(id);
    if (c === undefined)
      throw new MoatError("ENOENT", `container ${id} does not exist in sandbox ${this.sandboxId}`);
    return c;
  }

  /** A new container's id must be free and its bundle must say what to run: its process. */
  admit(config: ContainerConfig): Process {
    if (this.has(config.id)) {
      throw new MoatError("EEXIST", `container ${config.id} already exists in sandbox ${this.sandboxId}`);
    }
    const proc = config.spec.process;
    if (!proc || proc.args.length === 0) {
      throw new MoatError(
        "EINVAL",
        `bundle ${config.bundle} has no process.args: say what the container runs`,
      );
    }
    return proc;
  }
}
