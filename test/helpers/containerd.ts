// A private containerd (Debian's containerd 1.6) for the shim tests: its own root, state
// and sockets in a temp dir, moat's shim on its PATH as containerd-shim-moat-v2, and the
// built-in busybox image imported into a namespace. Stopped, and everything it made
// removed, by stop().
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { killAll, processesWith } from "./procs.js";
import { tempDir } from "./tmp.js";

/** The CLI and the shim's entry points (this file runs from dist/test/helpers). */
export const MOAT_MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
export const SHIM_MAIN = fileURLToPath(new URL("../../src/shim/main.js", import.meta.url));
export const RUNTIME = "io.containerd.moat.v2";

export interface Containerd {
  dir: string;
  address: string;
  /** Where moat's shims keep their sockets and sandbox state (MOAT_SHIM_ROOT). */
  shimRoot: string;
  ctr(
    args: string[],
    opts?: { input?: string; timeout?: number },
  ): { status: number | null; stdout: string; stderr: string };
  log(): string;
  /** Kill every shim left under shimRoot, then stop containerd. */
  stop(): Promise<void>;
}

export interface ContainerdOptions {
  /** Extra TOML for the config (e.g. the CRI plugin's runtimes). */
  config?: string;
  /** Images to import, per namespace. */
  namespaces?: string[];
}

function waitForSocket(p: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (fs.existsSync(p)) return resolve();
      if (child.exitCode !== null) {
        return reject(
          new Error(
            `containerd exited (${child.exitCode}): ${fs.readFileSync(logFile, "utf8").slice(-2000)}`,
          ),
        );
      }
      if (Date.now() > deadline) return reject(new Error("containerd did not start within 30 s"));
      setTimeout(poll, 100);
    };
    poll();
  });
}

export async function startContainerd(opts: ContainerdOptions = {}): Promise<Containerd> {
  // Short: unix socket paths must fit in 108 bytes.
  const dir = tempDir("ctd-");
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(
    path.join(bin, "containerd-shim-moat-v2"),
    `#!/bin/sh\nexec "${process.execPath}" "${SHIM_MAIN}" "$@"\n`,
    { mode: 0o755 },
  );
  const address = path.join(dir, "containerd.sock");
  const shimRoot = path.join(dir, "shim");
  const config = path.join(dir, "config.toml");
  fs.writeFileSync(
    config,
    `version = 2
root = "${dir}/root"
state = "${dir}/state"
[grpc]
  address = "${address}"
[ttrpc]
  address = "${address}.ttrpc"
[debug]
  level = "debug"
${opts.config ?? `[plugins."io.containerd.grpc.v1.cri"]\n  disable_tcp_service = true\n`}`,
  );
  const logFile = path.join(dir, "containerd.log");
  const out = fs.openSync(logFile, "a");
  const child = spawn("containerd", ["--config", config], {
    stdio: ["ignore", out, out],
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, MOAT_SHIM_ROOT: shimRoot },
  });
  fs.closeSync(out);
  await waitForSocket(address, child, logFile);

  const ctr: Containerd["ctr"] = (args, o = {}) => {
    const r = spawnSync("ctr", ["--address", address, ...args], {
      encoding: "utf8",
      timeout: o.timeout ?? 180_000,
      ...(o.input !== undefined ? { input: o.input } : {}),
    });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  };

  const archive = path.join(dir, "busybox.tar");
  const saved = spawnSync(
    process.execPath,
    [MOAT_MAIN, "--root", path.join(dir, "moat"), "save", "-o", archive, "default"],
    {
      encoding: "utf8",
    },
  );
  if (saved.status !== 0) throw new Error(`moat save failed: ${saved.stderr}`);
  for (const ns of opts.namespaces ?? ["moat-test"]) {
    const r = ctr(["-n", ns, "images", "import", archive]);
    if (r.status !== 0) throw new Error(`ctr images import failed: ${r.stderr}`);
  }

  return {
    dir,
    address,
    shimRoot,
    ctr,
    log: () => fs.readFileSync(logFile, "utf8"),
    async stop() {
      // Shims a failed test left behind go first (their sandboxes die with them).
      killAll(processesWith(shimRoot));
      child.kill("SIGTERM");
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const t = setTimeout(() => {
          child.kill("SIGKILL");
        }, 10_000);
        child.once("exit", () => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}

export { processesWith };
