// The host end of the guest agent: typed calls of the agent API over ttrpc on the VM's
// virtio-serial socket, and the wait for the agent to come up.

import {
  AGENT_SERVICE,
  decodeResponse,
  encodeRequest,
  type Method,
  type RequestOf,
  type ResponseOf,
} from "../agent/protocol.js";
import { type ErrorCode, MoatError } from "../spec/errors.js";
import { TtrpcClient } from "../ttrpc/client.js";
import { Code, TtrpcError } from "../ttrpc/messages.js";
import type { RunningVm } from "./hypervisor/hypervisor.js";
import { describeExit } from "./hypervisor/qemu.js";

const STATUS_TO_ERROR: Partial<Record<number, ErrorCode>> = {
  [Code.NOT_FOUND]: "ENOENT",
  [Code.ALREADY_EXISTS]: "EEXIST",
  [Code.FAILED_PRECONDITION]: "ESTATE",
  [Code.INVALID_ARGUMENT]: "EINVAL",
  [Code.UNIMPLEMENTED]: "ENOTSUP",
  [Code.DEADLINE_EXCEEDED]: "ETIMEDOUT",
};

/** How long a lost agent connection waits for QEMU's exit, to quote why the VM ended. */
const EXIT_GRACE_MS = 3_000;

export class AgentClient {
  private readonly client: TtrpcClient;
  /** close() was called: calls failing after it are the expected end, not a crash. */
  private closing = false;

  constructor(private readonly vm: RunningVm) {
    this.client = new TtrpcClient(vm.agent);
  }

  /** One agent call; a failure is a MoatError naming the method and the agent's reason. */
  async call<M extends Method>(
    method: M,
    req: RequestOf<M>,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<ResponseOf<M>> {
    try {
      const out = await this.client.call(AGENT_SERVICE, method, encodeRequest(method, req), opts);
      return decodeResponse(method, out);
    } catch (e) {
      if (!(e instanceof TtrpcError)) throw e;
      if (e.code === Code.UNAVAILABLE) throw await this.lost(method, e);
      throw new MoatError(
        STATUS_TO_ERROR[e.code] ?? "EIO",
        `the guest agent of VM ${this.vm.id} failed ${method}: ${e.message}`,
        { cause: e },
      );
    }
  }

  close(): void {
    this.closing = true;
    this.client.close();
  }

  /**
   * The error for a call whose connection is gone. Unless this side closed it, the guest
   * went away under the call (QEMU died, or the agent did and the guest powered off): say
   * so with the VM's last words rather than a bare "connection lost".
   */
  private async lost(method: string, e: TtrpcError): Promise<MoatError> {
    if (this.closing) {
      return new MoatError("ESTATE", `VM ${this.vm.id} is shutting down: ${method} was not answered`, {
        cause: e,
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      this.vm.wait(),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), EXIT_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    const how = exit
      ? `the VM exited unexpectedly (QEMU ${describeExit(exit)})`
      : "the connection to its guest agent was lost while QEMU still runs";
    return new MoatError(
      "EIO",
      `sandbox ${this.vm.id}: ${how} during ${method}; its containers are gone.\n${this.vm.diagnostics()}`,
      { cause: e },
    );
  }

  /**
   * Wait until the guest has opened its end of the agent port (QEMU reports it as a
   * VSERPORT_CHANGE event): bytes sent earlier would be dropped by the guest driver.
   */
  static async connect(vm: RunningVm, timeoutMs: number): Promise<AgentClient> {
    const qmp = vm.qmp();
    let onEvent: ((e: { event: string; data?: Record<string, unknown> }) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => {
          onEvent = (e) => {
            if (e.event === "VSERPORT_CHANGE" && e.data?.["open"] === true) resolve();
          };
          qmp.on("event", onEvent);
        }),
        vm.wait().then((x) => {
          throw new MoatError(
            "EIO",
            `the guest of VM ${vm.id} stopped before it could start its agent (QEMU ${describeExit(x)}).\n${vm.diagnostics()}\n` +
              "If the guest kernel or initramfs is damaged, delete moat's guest asset directory so it is rebuilt.",
          );
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            reject(
              new MoatError(
                "ETIMEDOUT",
                `the guest of VM ${vm.id} did not start its agent within ${timeoutMs} ms; the VM was killed.\n${vm.diagnostics()}`,
              ),
            );
            // Rejected first, so the exit this causes cannot win the race above.
            void vm.kill();
          }, timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onEvent) qmp.off("event", onEvent);
    }
    return new AgentClient(vm);
  }
}
