// Real QEMU boots under whatever accelerator the host offers (TCG here). One VM carries
// most assertions, since each boot costs seconds.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { isMoatError } from "../../src/spec/errors.js";
import { ensureAssets, type GuestAssets } from "../../src/vm/assets/build.js";
import { AGENT_PORT_NAME } from "../../src/vm/assets/init-script.js";
import { bootGuest } from "../../src/vm/guest.js";
import { QemuHypervisor } from "../../src/vm/hypervisor/qemu.js";
import { alive, qemuProcessesMentioning, waitUntil } from "./helpers.js";

const here = dirname(fileURLToPath(import.meta.url));
let tmp: string;
let assets: GuestAssets;

before(async () => {
  assets = await ensureAssets();
  tmp = mkdtempSync(join(tmpdir(), "moat-vm-test-"));
});

after(async () => {
  const left = qemuProcessesMentioning(tmp);
  for (const pid of left) process.kill(pid, "SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(left, [], "every VM the tests started has exited");
});

describe("guest boot", () => {
  it("boots to the agent, which answers over virtio-serial from the guest kernel and mounts a 9p share; QMP works", async (t) => {
    const share = join(tmp, "share");
    mkdirSync(share);
    writeFileSync(join(share, "hello.txt"), "hello from the host\n");
    const runDir = join(tmp, "run-main");
    const started = Date.now();
    const g = await bootGuest({
      id: "main",
      runDir,
      shares: [{ tag: "hostshare", hostPath: share, readonly: true }],
    });
    try {
      const ready = Date.now() - started;
      const qmp = g.vm.qmp();
      const events: string[] = [];
      qmp.on("event", (e) => events.push(e.event));
      assert.deepEqual(await qmp.execute("query-status"), {
        status: "running",
        singlestep: false,
        running: true,
      });
      await qmp.execute("stop");
      assert.equal((await qmp.execute<{ status: string }>("query-status")).status, "paused");
      await qmp.execute("cont");
      assert.equal((await qmp.execute<{ status: string }>("query-status")).status, "running");
      assert.deepEqual(events, ["STOP", "RESUME"]);
      await assert.rejects(
        qmp.execute("no-such-command"),
        (e: unknown) => isMoatError(e, "EIO") && /CommandNotFound/.test(e.message),
      );

      const details = await g.agent.call("GetGuestDetails", {});
      t.diagnostic(`accel ${g.accel.accel}; agent ready after ${ready} ms`);
      assert.equal(details.kernelRelease, assets.manifest.kernelRelease);
      assert.notEqual(details.kernelRelease, release());
      // The agent mounts the 9p share (read-only); a wrong tag would fail the call.
      await g.agent.call("CreateSandbox", { shareTag: "hostshare" });
      await assert.rejects(
        g.agent.call("CreateContainer", {
          containerId: "../x",
          process: { args: ["true"], env: [], cwd: "/", uid: 0, gid: 0, terminal: false },
          rootfsDir: "x",
          hostname: "",
        }),
        (e: unknown) => isMoatError(e, "EINVAL"),
      );
      assert.ok(!existsSync(join(share, "new")));
      g.agent.close();
      assert.deepEqual(await g.vm.quit(), { code: 0, signal: null });
      assert.ok(g.vm.exited);
      assert.deepEqual(
        readdirSync(runDir).sort(),
        ["console.log"],
        "sockets are removed once QEMU is connected",
      );
    } finally {
      await g.vm.kill();
    }
  });

  it("quits a running VM through QMP", async () => {
    const runDir = join(tmp, "run-quit");
    const vm = await new QemuHypervisor().launch({
      id: "quit",
      runDir,
      kernel: assets.kernel,
      initrd: assets.initrd,
      image: assets.image,
      accel: "tcg",
      memoryMiB: 512,
      cpus: 1,
      agentPortName: AGENT_PORT_NAME,
    });
    try {
      assert.ok(alive(vm.pid));
      assert.equal((await vm.qmp().execute<{ status: string }>("query-status")).status, "running");
      assert.deepEqual(await vm.quit(), { code: 0, signal: null });
      assert.ok(vm.exited);
      await assert.rejects(vm.qmp().execute("query-status"), (e: unknown) => isMoatError(e, "EIO"));
    } finally {
      await vm.kill();
    }
  });

  it("reports a missing kernel before starting QEMU", async () => {
    const missing = join(tmp, "no-such-vmlinux");
    await assert.rejects(
      bootGuest({
        id: "nokernel",
        runDir: join(tmp, "run-nokernel"),
        accel: "tcg",
        assets: { ...assets, kernel: missing },
      }),
      (e: unknown) => isMoatError(e, "ENOENT") && e.message.includes(missing) && /rebuilt/.test(e.message),
    );
  });

  it("quotes QEMU when it cannot load a corrupt kernel", async () => {
    const kernel = join(tmp, "corrupt-vmlinux");
    writeFileSync(kernel, Buffer.alloc(256 * 1024, 0x5a));
    await assert.rejects(
      bootGuest({
        id: "badkernel",
        runDir: join(tmp, "run-badkernel"),
        accel: "tcg",
        assets: { ...assets, kernel },
      }),
      (e: unknown) =>
        isMoatError(e, "EIO") &&
        /exited during start-up/.test(e.message) &&
        /QEMU said:\n {2}\| \S/.test(e.message),
    );
  });

  it("turns a kernel panic from a corrupt initramfs into an error quoting the console", async () => {
    const initrd = join(tmp, "corrupt-initramfs");
    writeFileSync(initrd, Buffer.alloc(64 * 1024, 0x5a));
    const started = Date.now();
    await assert.rejects(
      bootGuest({
        id: "badinitrd",
        runDir: join(tmp, "run-badinitrd"),
        accel: "tcg",
        assets: { ...assets, initrd },
      }),
      (e: unknown) =>
        isMoatError(e, "EIO") &&
        /stopped before it could start its agent/.test(e.message) &&
        /\| .*Kernel panic/.test(e.message),
    );
    assert.ok(Date.now() - started < 60_000);
  });

  it("gives up on a hung boot within the timeout, quoting the console, and kills the VM", async () => {
    const runDir = join(tmp, "run-hang");
    const started = Date.now();
    await assert.rejects(
      bootGuest({
        id: "hang",
        runDir,
        accel: "tcg",
        // An init that never opens the agent port.
        kernelArgs: ["rdinit=/bin/sleep", "--", "600"],
        bootTimeoutMs: 8_000,
      }),
      (e: unknown) =>
        isMoatError(e, "ETIMEDOUT") &&
        /did not start its agent within 8000 ms; the VM was killed/.test(e.message) &&
        /guest console/.test(e.message),
    );
    assert.ok(Date.now() - started < 20_000);
    assert.deepEqual(qemuProcessesMentioning(runDir), []);
  });

  it("takes QEMU down when the process that launched it is SIGKILLed", async () => {
    const runDir = join(tmp, "run-orphan");
    const child = spawn(
      process.execPath,
      [join(here, "fixtures", "launch-vm.js"), runDir, assets.kernel, assets.initrd, assets.image],
      { env: { ...process.env, MOAT_VM_FIXTURE: "launch" }, stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.setEncoding("utf8");
        child.stdout.on("data", (d: string) => {
          out += d;
          if (out.includes("\n")) resolve(out);
        });
        child.once("exit", (code) =>
          reject(new Error(`fixture exited with ${code} before launching: ${out}`)),
        );
      });
      const { pid } = JSON.parse(line) as { pid: number };
      assert.ok(alive(pid), "QEMU runs while its launcher lives");
      assert.deepEqual(qemuProcessesMentioning(runDir), [pid]);
      child.kill("SIGKILL");
      assert.ok(await waitUntil(() => !alive(pid), 5_000), `QEMU ${pid} survived its launcher`);
      assert.deepEqual(qemuProcessesMentioning(runDir), []);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
