// Task events back to containerd: Events/Forward calls on containerd's ttrpc socket (the
// TTRPC_ADDRESS it gives every shim), sent one at a time, in the order the shim produced
// them, because containerd (and the CRI above it) relies on that order: create, start,
// exit, delete; exec-added, exec-started.
import * as net from "node:net";
import { TtrpcClient } from "../ttrpc/index.js";
import { EVENTS_SERVICE, type EventName, encodeForward } from "./protocol.js";

export class Publisher {
  private client: TtrpcClient | undefined;
  private socket: net.Socket | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly address: string,
    private readonly namespace: string,
    private readonly log: (msg: string) => void,
  ) {}

  /** Queue one event; resolves once it was delivered (or given up on, which is logged). */
  publish(event: EventName, value: object): Promise<void> {
    const payload = encodeForward(this.namespace, event, value);
    this.queue = this.queue.then(() => this.send(event, payload));
    return this.queue;
  }

  private async send(event: EventName, payload: Uint8Array): Promise<void> {
    if (!this.address) return;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const client = await this.connect();
        await client.call(EVENTS_SERVICE, "Forward", payload, { timeoutMs: 5_000 });
        return;
      } catch (e) {
        this.drop();
        this.log(`publishing ${event} failed (attempt ${attempt + 1}): ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
    this.log(`gave up publishing ${event}`);
  }

  private connect(): Promise<TtrpcClient> {
    if (this.client) return Promise.resolve(this.client);
    const path = this.address.replace(/^unix:\/\//, "");
    return new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once("error", reject);
      s.once("connect", () => {
        s.off("error", reject);
        s.on("error", () => this.drop());
        s.on("close", () => this.drop());
        // The shim must be able to exit while this connection is idle.
        s.unref();
        this.socket = s;
        this.client = new TtrpcClient(s);
        resolve(this.client);
      });
    });
  }

  private drop(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.client = undefined;
  }

  /** Wait for queued events, then close the connection. */
  async close(): Promise<void> {
    await this.queue;
    this.drop();
  }
}
