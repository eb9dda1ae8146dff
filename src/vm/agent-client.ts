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

export class AgentClient {
  private readonly client: TtrpcClient;

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
      throw new MoatError(
        STATUS_TO_ERROR[e.code] ?? "EIO",
        `the guest agent of VM ${this.vm.id} failed ${method}: ${e.message}`,
        { cause: e },
      );
    }
  }

  close(): void {
    this.client.close();
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
