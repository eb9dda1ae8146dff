#!/usr/bin/env node
// containerd-shim-moat-v2: the containerd shim v2 front door (runtime io.containerd.moat.v2).
// containerd runs the binary with Go-style flags and an action, in the bundle's directory:
//   start   start (or find) the pod's shim server and print its ttrpc address
//   delete  clean up after a shim that is gone; print a DeleteResponse
// `serve` is moat's own action: the long-lived server that `start` launches, detached.
import "../sys/threadpool.js";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { MoatError } from "../spec/errors.js";
import type { Spec } from "../spec/runtime.js";
import { unmountAndRemove } from "../sys/mounts.js";
import { readReport } from "../sys/report.js";
import { TtrpcServer } from "../ttrpc/index.js";
import { parseShimArgs, SANDBOX_ID_ANNOTATION, type ShimArgs, shimDir } from "./args.js";
import { encode, toTimestamp } from "./protocol.js";
import { Publisher } from "./publisher.js";
import { unmountRootfs } from "./rootfs.js";
import { TaskService } from "./service.js";

function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    return pkg.version;
  } catch {
    return "unknown";
  }
}

function readSpec(bundle: string): Spec | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as Spec;
  } catch {
    return undefined;
  }
}

function groupOf(args: ShimArgs, bundle: string): string {
  return readSpec(bundle)?.annotations?.[SANDBOX_ID_ANNOTATION] || args.id;
}

function canConnect(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socket);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** `start`: reuse the pod's running shim, or launch one and wait until it listens. */
async function start(args: ShimArgs): Promise<void> {
  const bundle = path.resolve(args.bundle || process.cwd());
  const group = groupOf(args, bundle);
  const dir = shimDir(args, group);
  const socket = path.join(dir, "shim.sock");
  const address = `unix://${socket}`;
  if (!(await canConnect(socket))) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
    const child = spawn(
      process.execPath,
      [
        new URL(import.meta.url).pathname,
        "-namespace",
        args.namespace,
        "-address",
        args.address,
        "-publish-binary",
        args.publishBinary,
        "-id",
        group,
        "-bundle",
        bundle,
        "-socket",
        socket,
        ...(args.debug ? ["-debug"] : []),
        "serve",
      ],
      // Detached, in its own session: containerd waits for `start` to exit, not for the shim.
      { cwd: bundle, detached: true, stdio: ["ignore", "ignore", "ignore", "pipe"] },
    );
    const { line } = await readReport(child);
    if (line !== "ok") {
      throw new MoatError("EIO", `the moat shim did not start: ${line || "it exited without a word"}`);
    }
  }
  // containerd reads the address file to reconnect after a restart of its own.
  const tmp = path.join(bundle, `.address.${process.pid}`);
  fs.writeFileSync(tmp, address);
  fs.renameSync(tmp, path.join(bundle, "address"));
  process.stdout.write(address);
}

/**
 * `delete`: the shim is gone (killed, crashed) and containerd cleans up. Its sandbox's
 * processes died with it (they hold a parent-death signal); what can remain are mounts and
 * files, which go here. The answer is a DeleteResponse saying the task was killed.
 */
async function cleanup(args: ShimArgs): Promise<void> {
  const bundle = path.resolve(args.bundle || process.cwd());
  unmountRootfs(path.join(bundle, "rootfs"));
  const dir = shimDir(args, groupOf(args, bundle));
  if (!(await canConnect(path.join(dir, "shim.sock")))) {
    const left = await unmountAndRemove(dir);
    if (left.length > 0) {
      throw new MoatError(
        "EBUSY",
        `cannot unmount ${left.join(", ")}: unmount it by hand, then delete the task again`,
      );
    }
  }
  process.stdout.write(
    encode("containerd.task.v2.DeleteResponse", {
      pid: 0,
      exitStatus: 128 + 9,
      exitedAt: toTimestamp(new Date()),
    }),
  );
}

/** The shim's log: containerd's `log` FIFO in the bundle, whose lines it copies into its own log. */
function openLog(bundle: string): (msg: string) => void {
  let fd = -1;
  try {
    fd = fs.openSync(path.join(bundle, "log"), fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  } catch {
    // no FIFO: containerd did not ask for the shim's log
  }
  return (msg) => {
    if (fd < 0) return;
    try {
      fs.writeSync(
        fd,
        `time="${new Date().toISOString()}" level=info msg=${JSON.stringify(msg)} runtime=io.containerd.moat.v2\n`,
      );
    } catch {
      // a full FIFO drops the line rather than block the shim
    }
  };
}

/** `serve`: the shim server for one pod. Reports "ok" on fd 3 once it listens. */
async function serve(args: ShimArgs): Promise<void> {
  const bundle = path.resolve(args.bundle || process.cwd());
  const log = openLog(bundle);
  const dir = path.dirname(args.socket);
  const publisher = new Publisher(process.env.TTRPC_ADDRESS ?? "", args.namespace, log);
  const server = new TtrpcServer();
  const service = new TaskService({
    namespace: args.namespace,
    groupId: args.id,
    stateDir: path.join(dir, "sandbox"),
    publisher,
    log,
    version: version(),
    debug: args.debug,
    onShutdown: async () => {
      void server.close();
      const left = await unmountAndRemove(dir);
      if (left.length > 0) log(`left ${dir} in place: ${left.join(", ")} would not unmount`);
      setTimeout(() => process.exit(0), 50);
    },
  });
  service.register(server);
  const stop = () => void service.shutdown();
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("SIGHUP", () => {});
  fs.rmSync(args.socket, { force: true });
  await server.listen(args.socket);
  fs.chmodSync(args.socket, 0o600);
  log(`shim for pod ${args.id} listening on ${args.socket}`);
  try {
    fs.writeSync(3, "ok\n");
    fs.closeSync(3);
  } catch {
    // `start` went away; containerd will find the address file
  }
}

export async function main(argv: string[]): Promise<number> {
  let args: ShimArgs;
  try {
    args = parseShimArgs(argv);
  } catch (e) {
    process.stderr.write(`containerd-shim-moat-v2: ${(e as Error).message}\n`);
    return 2;
  }
  if (args.version) {
    process.stdout.write(`containerd-shim-moat-v2:\n  Version:  ${version()}\n\n`);
    return 0;
  }
  try {
    if (!args.namespace) throw new MoatError("EINVAL", "shim namespace cannot be empty (-namespace)");
    switch (args.action) {
      case "start":
        await start(args);
        return 0;
      case "delete":
        await cleanup(args);
        return 0;
      case "serve":
        await serve(args);
        return -1; // keep running
      default:
        throw new MoatError(
          "EINVAL",
          `unknown action "${args.action}": containerd runs this shim with start or delete`,
        );
    }
  } catch (e) {
    process.stderr.write(`containerd-shim-moat-v2: ${(e as Error).message}\n`);
    if (args.action === "serve") {
      try {
        fs.writeSync(3, `${(e as Error).message}\n`);
      } catch {
        // nobody to tell
      }
    }
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code;
});
