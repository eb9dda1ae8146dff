// The moat guest agent: runs on Node inside the VM, started by the initramfs /init
// (a busybox shell that stays PID 1 only to reap orphans; see vm/assets/init-script.ts).
// It finishes the guest's setup, finds the virtio-serial port the host named
// moat.agent, and serves the agent API there over ttrpc.
import { execFileSync } from "node:child_process";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { Duplex } from "node:stream";
import { TtrpcServer } from "../ttrpc/server.js";
import { BUSYBOX } from "./busybox.js";
import { setupPodCgroup } from "./cgroups.js";
import { Containers } from "./containers.js";
import { configureNic, hasNic } from "./network.js";
import {
  AGENT_PROTOCOL_VERSION,
  AGENT_SERVICE,
  decodeRequest,
  encodeResponse,
  type Method,
  type RequestOf,
  type ResponseOf,
} from "./protocol.js";

const PORT_NAME = process.argv[2] ?? "moat.agent";
const CGROUP = "/sys/fs/cgroup";

function log(msg: string): void {
  process.stderr.write(`moat-agent: ${msg}\n`);
}

function setupGuest(): void {
  const mount = (...args: string[]) =>
    execFileSync(BUSYBOX, ["mount", ...args], { stdio: ["ignore", "ignore", "inherit"] });
  mount("-t", "tmpfs", "-o", "nosuid,nodev,mode=1777", "tmpfs", "/tmp");
  execFileSync(BUSYBOX, ["mkdir", "-p", "/run"]);
  mount("-t", "tmpfs", "-o", "nosuid,nodev,mode=0755", "tmpfs", "/run");
  mount("-t", "cgroup2", "-o", "nosuid,nodev,noexec", "cgroup2", CGROUP);
  // Terminals for containers come from here (moat-pty opens /dev/ptmx, which the kernel
  // ties to the devpts mounted beside it).
  execFileSync(BUSYBOX, ["mkdir", "-p", "/dev/pts"]);
  mount("-t", "devpts", "-o", "nosuid,noexec,mode=0620,ptmxmode=0666", "devpts", "/dev/pts");
  // Per-container cgroups get these controllers, which StatsContainer reads, under the pod's.
  try {
    writeFileSync(`${CGROUP}/cgroup.subtree_control`, "+cpu +memory +pids");
  } catch (e) {
    log(`cannot enable cgroup controllers: ${(e as Error).message}`);
  }
  setupPodCgroup(log);
}

/** /dev/vportNpM of the port named PORT_NAME; the driver may still be probing it. */
async function findPort(): Promise<string> {
  for (let i = 0; i < 400; i++) {
    for (const dev of existsSync("/sys/class/virtio-ports") ? readdirSync("/sys/class/virtio-ports") : []) {
      let name = "";
      try {
        name = readFileSync(`/sys/class/virtio-ports/${dev}/name`, "utf8").trim();
      } catch {
        continue;
      }
      if (name === PORT_NAME && existsSync(`/dev/${dev}`)) return `/dev/${dev}`;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no virtio-serial port named ${PORT_NAME}`);
}

/** A char device as one duplex stream (net.Socket does not take character devices). */
function openPort(path: string): Duplex {
  const fd = openSync(path, "r+");
  const input = createReadStream("", { fd, autoClose: false, highWaterMark: 256 * 1024 });
  const output = createWriteStream("", { fd, autoClose: false });
  const d = new Duplex({
    read() {
      input.resume();
    },
    write(chunk, _enc, cb) {
      output.write(chunk, cb);
    },
  });
  input.on("data", (b) => {
    if (!d.push(b)) input.pause();
  });
  input.on("end", () => d.push(null));
  input.on("error", (e) => d.destroy(e));
  output.on("error", (e) => d.destroy(e));
  return d;
}

function serve(containers: Containers): TtrpcServer {
  const server = new TtrpcServer();
  const on = <M extends Method>(
    m: M,
    fn: (req: RequestOf<M>, signal: AbortSignal) => Promise<ResponseOf<M>> | ResponseOf<M>,
  ) => {
    server.register(AGENT_SERVICE, m, async (payload, ctx) =>
      encodeResponse(m, await fn(decodeRequest(m, payload), ctx.signal)),
    );
  };
  const empty = {} as Record<string, never>;
  on("CreateSandbox", async (r) => {
    const fresh =
      r.entropy && r.entropy.length > 0 ? { entropy: r.entropy, unixTimeMs: r.unixTimeMs ?? 0 } : undefined;
    await containers.createSandbox(r.shareTag, r.network, r.volumeTag, fresh);
    return empty;
  });
  on("CreateContainer", async (r) => {
    await containers.create(
      r.containerId,
      r.process,
      r.rootfsDir,
      r.hostname,
      r.mounts ?? [],
      r.rootfsDisk ?? "",
      {
        readonlyRootfs: r.readonlyRootfs ?? false,
        pidsLimit: Number(r.pidsLimit ?? 0),
        init: r.init ?? false,
      },
    );
    return empty;
  });
  on("StartContainer", async (r) => ({ pid: await containers.start(r.containerId) }));
  on("ExecProcess", async (r) => ({ pid: await containers.exec(r.containerId, r.execId, r.process) }));
  on("SignalProcess", async (r) => {
    if (r.all) await containers.signalAll(r.containerId, r.signal);
    else await containers.signal(r.containerId, r.execId, r.signal);
    return empty;
  });
  on("WaitProcess", (r) => containers.wait(r.containerId, r.execId));
  on("WriteStdin", async (r) => ({ length: await containers.writeStdin(r.containerId, r.execId, r.data) }));
  on("CloseStdin", (r) => {
    containers.closeStdin(r.containerId, r.execId);
    return empty;
  });
  on("ReadStdout", (r, signal) => containers.read(r.containerId, r.execId, "stdout", r.maxBytes, signal));
  on("ReadStderr", (r, signal) => containers.read(r.containerId, r.execId, "stderr", r.maxBytes, signal));
  on("TtyWinResize", (r) => {
    containers.resize(r.containerId, r.execId, r.rows, r.columns);
    return empty;
  });
  on("RemoveContainer", async (r) => {
    await containers.remove(r.containerId);
    return empty;
  });
  on("DestroySandbox", async () => {
    await containers.destroy();
    return empty;
  });
  on("StatsContainer", (r) => containers.stats(r.containerId));
  on("PauseContainer", async (r) => {
    await containers.freeze(r.containerId, true);
    return empty;
  });
  on("ResumeContainer", async (r) => {
    await containers.freeze(r.containerId, false);
    return empty;
  });
  on("GetGuestDetails", () => ({
    kernelRelease: release(),
    protocolVersion: AGENT_PROTOCOL_VERSION,
    memoryTotalBytes: totalmem(),
    cpus: cpus().length,
  }));
  return server;
}

async function main(): Promise<void> {
  setupGuest();
  const containers = new Containers();
  if (hasNic()) {
    await configureNic().catch((e: unknown) => {
      log(`cannot configure the NIC yet (CreateSandbox will try again): ${(e as Error).message}`);
    });
  }
  const port = await findPort();
  const server = serve(containers);
  log(`serving on ${port}`);
  await server.serve(openPort(port));
  log("the host closed the agent port");
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(`fatal: ${e instanceof Error ? e.stack : String(e)}`);
    process.exit(1);
  },
);
