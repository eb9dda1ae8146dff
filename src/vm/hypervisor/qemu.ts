// QEMU as moat's hypervisor. moat listens on the VM's unix sockets before QEMU starts
// and QEMU connects to them, so there is no polling for socket files to appear, and
// QEMU is started under `setpriv --pdeathsig SIGKILL` so that it dies with moat even
// when moat is SIGKILLed and gets no chance to clean up. It runs in a session of its own
// (setsid), never in the terminal's process group: a ^C or a hang-up is moat's to handle
// (forwarded to the container), and must not kill the VM under it.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { mkdir, realpath, rm, stat } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { GUEST_NET } from "../../agent/protocol.js";
import { MoatError } from "../../spec/errors.js";
import { announceGuest, blockList, relayGuestFrames } from "./frame-filter.js";
import type { Hypervisor, RunningVm, VmConfig, VmExit } from "./hypervisor.js";
import { restoreState, saveState } from "./migration.js";
import { GATEWAY_ADDRESS, type PasstProcess, passtMissing, startPasst } from "./passt.js";
import { GUEST_MAC, qemuArgv } from "./qemu-cmdline.js";
import { QmpClient } from "./qmp.js";

export const QEMU_BINARY = "qemu-system-x86_64";
const ID = /^[A-Za-z0-9_.-]{1,64}$/;
const STDERR_KEEP = 8192;

export class QemuHypervisor implements Hypervisor {
  readonly name = "qemu";

  constructor(private readonly binary = QEMU_BINARY) {}

  /**
   * The QEMU build, told by its binary's path, size and modification time: a saved device
   * state loads only into the QEMU that wrote it, and a stat is cheaper than running
   * `qemu --version` on every sandbox's start.
   */
  async version(): Promise<string> {
    const candidates = this.binary.includes("/")
      ? [this.binary]
      : (process.env.PATH ?? "/usr/bin:/bin").split(":").map((d) => join(d || ".", this.binary));
    for (const c of candidates) {
      try {
        const real = await realpath(c);
        const st = await stat(real);
        if (st.isFile()) return `${real} ${st.size} ${st.mtimeMs} ${st.ino}`;
      } catch {
        // not here
      }
    }
    throw new MoatError("ENOENT", `${this.binary} is not installed: install the qemu-system-x86 package`);
  }

  async launch(config: VmConfig): Promise<RunningVm> {
    if (!ID.test(config.id)) {
      throw new MoatError("EINVAL", `VM id "${config.id}" must be 1-64 letters, digits, "_", "." or "-"`);
    }
    const restoring = config.restoreState !== undefined;
    if (restoring && config.memoryFile === undefined) {
      throw new MoatError("EINVAL", `VM ${config.id}: a restored VM needs its template's memory file`);
    }
    for (const [what, p] of [
      ...(restoring
        ? ([
            ["template state", config.restoreState!],
            ["template memory", config.memoryFile!.path],
          ] as const)
        : ([
            ["kernel", config.kernel],
            ["initramfs", config.initrd],
          ] as const)),
      ...(config.image !== undefined ? ([["image", config.image]] as const) : []),
    ] as const) {
      const s = await stat(p).catch(() => undefined);
      if (!s?.isFile() || s.size === 0) {
        throw new MoatError(
          "ENOENT",
          `guest ${what} ${p} is missing or empty; delete moat's guest asset directory so it is rebuilt`,
        );
      }
    }
    await mkdir(config.runDir, { recursive: true, mode: 0o700 });
    const consoleLog = join(config.runDir, "console.log");
    const agentSocket = join(config.runDir, "agent.sock");
    const qmpSocket = join(config.runDir, "qmp.sock");
    const netSocket = config.network ? join(config.runDir, "net.sock") : undefined;
    const argv = qemuArgv({
      accel: config.accel,
      memoryMiB: config.memoryMiB,
      cpus: config.cpus,
      ...(restoring ? { incoming: true } : { kernel: config.kernel, initrd: config.initrd }),
      ...(config.memoryFile !== undefined ? { memoryFile: config.memoryFile } : {}),
      ...(config.image !== undefined ? { image: config.image } : {}),
      ...(config.disks !== undefined ? { disks: config.disks } : {}),
      kernelArgs: config.kernelArgs,
      consoleLog,
      agentSocket,
      agentPortName: config.agentPortName,
      qmpSocket,
      shares: config.shares,
      ...(netSocket !== undefined ? { netSocket } : {}),
      tscKhz: config.accel === "tcg" ? hostTscKhz() : undefined,
    });
    await rm(agentSocket, { force: true });
    await rm(qmpSocket, { force: true });
    const agentServer = await listen(agentSocket);
    const qmpServer = await listen(qmpSocket).catch(async (e: unknown) => {
      await closeServer(agentServer, agentSocket);
      throw e;
    });
    const agentConn = accept(agentServer);
    const qmpConn = accept(qmpServer);
    let net: { server: Server; conn: Promise<Socket>; passt: PasstProcess } | undefined;
    if (config.network && netSocket !== undefined) {
      let server: Server | undefined;
      try {
        await rm(netSocket, { force: true });
        server = await listen(netSocket);
        net = { server, conn: accept(server), passt: startPasst(config.network) };
      } catch (e) {
        await closeServer(agentServer, agentSocket);
        await closeServer(qmpServer, qmpSocket);
        if (server) await closeServer(server, netSocket);
        throw e;
      }
    }
    const passt = net?.passt;
    const passtExit = passt ? exitOf(passt.child) : undefined;

    const child = spawn("setpriv", ["--pdeathsig", "SIGKILL", "--", this.binary, ...argv], {
      stdio: ["ignore", "ignore", "pipe"],
      // setsid: out of the terminal's process group (the death signal survives it).
      detached: true,
    });
    let stderr = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (d: string) => {
      stderr = (stderr + d).slice(-STDERR_KEEP);
    });
    const vmDiag = (lines = 20) => diagnostics(consoleLog, stderr, lines);
    const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
    const exit = exitOf(child);
    // QEMU exiting is only an error while starting; afterwards it is the normal end.
    const exitedEarly = exit.then((x) => {
      // setpriv exits 127 when it cannot run the QEMU binary at all.
      const hint =
        x.code === 127
          ? `Is ${this.binary} installed? Install the qemu-system-x86 package.`
          : "Check the guest kernel and initramfs paths and the QEMU options above.";
      throw new MoatError(
        "EIO",
        `QEMU for VM ${config.id} exited during start-up (${describeExit(x)}).\n${vmDiag()}\n${hint}`,
      );
    });
    spawnError.catch(() => {});
    exitedEarly.catch(() => {});
    const passtFailed = passtExit?.then((x) => {
      const said = passt!.stderr();
      throw x.code === 127 || (x.code === null && x.signal === null)
        ? passtMissing()
        : new MoatError(
            "EIO",
            `passt, the network of VM ${config.id}, exited during start-up (${describeExit(x)}).${said ? `\npasst said:\n${said}` : ""}\nCheck that the passt package is installed and working, or use network none.`,
          );
    });
    passtFailed?.catch(() => {});

    const timeoutMs = config.startTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const started = Promise.race([
        Promise.all([agentConn, qmpConn, net?.conn]),
        spawnError,
        exitedEarly,
        ...(passtFailed ? [passtFailed] : []),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new MoatError(
                  "ETIMEDOUT",
                  `QEMU for VM ${config.id} did not start within ${timeoutMs} ms.\n${vmDiag()}`,
                ),
              ),
            timeoutMs,
          );
        }),
      ]);
      const [agent, qmpSock, guestNet] = await started;
      if (guestNet && passt) {
        passt.socket.write(announceGuest(GUEST_MAC, GUEST_NET.address.split("/")[0]!));
        relayGuestFrames(guestNet, passt.socket, blockList(hostBlockedAddresses()));
      }
      const qmp = await QmpClient.handshake(qmpSock, timeoutMs);
      if (restoring) {
        await Promise.race([
          restoreState(qmp, config.runDir, config.restoreState!, timeoutMs),
          exitedEarly,
          ...(passtFailed ? [passtFailed] : []),
        ]);
      }
      return new QemuVm(
        config.id,
        child,
        consoleLog,
        agent,
        qmp,
        withNetwork(exit, passt, passtExit),
        vmDiag,
        config.runDir,
      );
    } catch (e) {
      stopPasst(passt);
      if (child.pid === undefined) {
        const notFound = (e as NodeJS.ErrnoException).code === "ENOENT";
        throw notFound
          ? new MoatError("ENOENT", "setpriv is not installed: install the util-linux package", { cause: e })
          : e;
      }
      // A QEMU that gives up early may close its sockets a moment before its exit is
      // seen; its exit status and stderr explain more than a reset connection does.
      const exitedAnyway = await Promise.race([exit.then(() => true), delay(500).then(() => false)]);
      if (exitedAnyway) throw await exitedEarly.catch((early: unknown) => early);
      child.kill("SIGKILL");
      await exit;
      throw e;
    } finally {
      clearTimeout(timer);
      // Once QEMU holds its connections the socket files are no longer needed.
      await closeServer(agentServer, agentSocket);
      await closeServer(qmpServer, qmpSocket);
      if (net && netSocket !== undefined) await closeServer(net.server, netSocket);
      agentConn.catch(() => {});
      qmpConn.catch(() => {});
      net?.conn.catch(() => {});
    }
  }
}

/** Addresses of the host's own interfaces, and the gateway address passt would send out. */
function hostBlockedAddresses(): string[] {
  const own = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.family === "IPv4")
    .map((a) => a!.address);
  return [GATEWAY_ADDRESS, ...own];
}

function stopPasst(passt: PasstProcess | undefined): void {
  if (!passt) return;
  passt.socket.destroy();
  if (passt.child.exitCode === null && passt.child.signalCode === null) passt.child.kill("SIGKILL");
}

/**
 * The VM's exit, reported once its passt is gone too: passt ends when its client does,
 * and is killed if it has not within a moment, so nothing of the VM outlives the exit.
 */
function withNetwork(
  exit: Promise<VmExit>,
  passt: PasstProcess | undefined,
  passtExit: Promise<VmExit> | undefined,
): Promise<VmExit> {
  if (!passt || !passtExit) return exit;
  return exit.then(async (x) => {
    passt.socket.destroy();
    const gone = await Promise.race([passtExit.then(() => true), delay(1_000).then(() => false)]);
    if (!gone) {
      passt.child.kill("SIGKILL");
      await passtExit;
    }
    return x;
  });
}

class QemuVm implements RunningVm {
  private exitInfo: VmExit | undefined;

  constructor(
    readonly id: string,
    private readonly child: ChildProcess,
    readonly consoleLog: string,
    readonly agent: Socket,
    private readonly monitor: QmpClient,
    private readonly exit: Promise<VmExit>,
    private readonly diag: (lines?: number) => string,
    private readonly runDir: string,
  ) {
    // The agent socket is left to reach EOF by itself: output the guest wrote just
    // before powering off may still be unread when the exit is reported.
    void exit.then((x) => {
      this.exitInfo = x;
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get exited(): boolean {
    return this.exitInfo !== undefined;
  }

  qmp(): QmpClient {
    return this.monitor;
  }

  wait(): Promise<VmExit> {
    return this.exit;
  }

  async kill(): Promise<VmExit> {
    if (!this.exitInfo) this.child.kill("SIGKILL");
    return this.exit;
  }

  async quit(timeoutMs = 5_000): Promise<VmExit> {
    if (this.exitInfo) return this.exitInfo;
    // QEMU may close the monitor before its reply arrives; the exit is what counts.
    this.monitor.execute("quit").catch(() => {});
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    try {
      return await this.exit;
    } finally {
      clearTimeout(timer);
    }
  }

  saveState(file: string, timeoutMs = 30_000): Promise<void> {
    return saveState(this.monitor, this.runDir, file, timeoutMs);
  }

  diagnostics(lines = 20): string {
    return this.diag(lines);
  }
}

function listen(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", (e) =>
      reject(
        new MoatError("EIO", `cannot listen on ${path}: ${e.message}; check the run directory`, { cause: e }),
      ),
    );
    s.listen(path, () => resolve(s));
  });
}

function accept(server: Server): Promise<Socket> {
  return new Promise((resolve) => server.once("connection", resolve));
}

/** Stop accepting; accepted connections stay open (server.close's callback would wait for them). */
async function closeServer(server: Server, path: string): Promise<void> {
  server.close();
  await rm(path, { force: true });
}

function exitOf(child: ChildProcess): Promise<VmExit> {
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    // spawn failures emit "error" without "exit"
    child.once("error", () => resolve({ code: null, signal: null }));
  });
}

export function describeExit(x: VmExit): string {
  return x.signal ? `killed by ${x.signal}` : `exit code ${x.code}`;
}

/** The last lines of the console log and of QEMU's stderr, ready to quote in a message. */
function diagnostics(consoleLog: string, stderr: string, lines: number): string {
  const parts: string[] = [];
  const all = tailLines(readTail(consoleLog, 65536), 400);
  // A panic's cause sits just above its backtrace: quote up to the panic line.
  const panic = all.findLastIndex((l) => l.includes("Kernel panic"));
  const consoleLines = panic >= 0 ? all.slice(Math.max(0, panic + 1 - lines), panic + 1) : all.slice(-lines);
  parts.push(
    consoleLines.length
      ? `Last lines of the guest console (${consoleLog}):\n${consoleLines.map((l) => `  | ${l}`).join("\n")}`
      : `The guest console (${consoleLog}) is empty: the kernel never started.`,
  );
  const errLines = tailLines(stderr, lines);
  if (errLines.length) parts.push(`QEMU said:\n${errLines.map((l) => `  | ${l}`).join("\n")}`);
  return parts.join("\n");
}

function readTail(path: string, max: number): string {
  let fd: number | undefined;
  try {
    const size = statSync(path).size;
    const len = Math.min(size, max);
    const buf = Buffer.alloc(len);
    fd = openSync(path, "r");
    readSync(fd, buf, 0, len, size - len);
    return buf.toString("utf8");
  } catch {
    return "";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function tailLines(text: string, n: number): string[] {
  return text
    .replace(/\r/g, "")
    .replace(/[^\x20-\x7e\n\t]/g, "?")
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l !== "")
    .slice(-n);
}

/**
 * The host's TSC rate, which a TCG guest sees as its own. Taken from /proc/cpuinfo,
 * which reports it on hosts with a constant TSC and no frequency scaling (a VM host
 * that has no usable KVM is one); undefined leaves the guest to calibrate itself.
 */
export function hostTscKhz(cpuinfo?: string): number | undefined {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return undefined;
    }
  }
  const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(text);
  const khz = m ? Math.round(Number(m[1]) * 1000) : Number.NaN;
  return Number.isFinite(khz) && khz >= 1000 ? khz : undefined;
}
