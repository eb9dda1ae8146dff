// Host ports a sandbox forwards must be free before QEMU starts: QEMU's own failure to
// bind one is an exit during start-up whose message names neither the port nor the fix.
import { createServer } from "node:net";
import { MoatError } from "../spec/errors.js";
import type { PortForward } from "./hypervisor/hypervisor.js";

/** Throws a MoatError naming the first host port that cannot be bound. */
export async function checkHostPortsFree(forwards: readonly PortForward[]): Promise<void> {
  for (const f of forwards) {
    const addr = f.hostAddress ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) => {
      const server = createServer();
      server.once("error", (e: NodeJS.ErrnoException) => {
        reject(
          e.code === "EADDRINUSE"
            ? new MoatError(
                "EBUSY",
                `host port ${addr}:${f.host} is already in use: pick another host port for -p ${f.host}:${f.guest}`,
              )
            : new MoatError(
                "EACCES",
                `cannot listen on host port ${addr}:${f.host} (${e.code}): pick another host port`,
                { cause: e },
              ),
        );
      });
      server.listen({ port: f.host, host: addr, exclusive: true }, () => server.close(() => resolve()));
    });
  }
}
