// busybox, the guest's one toolbox: every mount, umount, ip or shell step the agent takes
// runs through it. Kept apart so each part of the agent runs a step the same way and
// reports a failure as the same RPC error, with busybox's own message.
import { execFile } from "node:child_process";
import { Code, TtrpcError } from "../ttrpc/messages.js";

export const BUSYBOX = "/bin/busybox";

export function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(BUSYBOX, args, { env: { PATH: "/bin:/sbin:/usr/bin:/usr/sbin" } }, (err, _out, stderr) => {
      if (err)
        reject(
          new TtrpcError(
            Code.INTERNAL,
            `${args.slice(0, 2).join(" ")} failed: ${stderr.trim() || err.message}`,
          ),
        );
      else resolve();
    });
  });
}
