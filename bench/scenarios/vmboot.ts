// 8. VM boot to first output, against the floor: the same QEMU binary, guest kernel and
// command line (from moat's own qemu-cmdline.ts builder) booting a busybox-only initramfs
// whose /init prints a marker and powers off at once. moat vm: sandbox created through the
// Sandbox API, container `echo marker` started, until its first stdout byte.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import * as path from "node:path";
import { Writable } from "node:stream";
import { createBundle, removeBundle } from "../../src/image/bundle.js";
import { ensureDefaultImage } from "../../src/image/default-image.js";
import { selectBackend } from "../../src/isolation/index.js";
import { measurement, result } from "../lib/stats.js";
import { moatProblem, store } from "../lib/subjects.js";
import type { BenchContext, Scenario } from "../lib/types.js";

const MARKER = "moat-bench-floor-marker";
const BUSYBOX = "/bin/busybox";

// The vm modules load only when this scenario runs, so the rest of the harness does not
// depend on the vm backend building.
const vmModules = async () => ({
  ...(await import("../../src/vm/assets/build.js")),
  ...(await import("../../src/vm/assets/cpio.js")),
  ...(await import("../../src/vm/assets/init-script.js")),
  ...(await import("../../src/vm/guest.js")),
  ...(await import("../../src/vm/hypervisor/qemu.js")),
  ...(await import("../../src/vm/hypervisor/qemu-cmdline.js")),
});

async function floorInitrd(file: string): Promise<void> {
  const { CpioWriter } = await vmModules();
  const init = `#!/bin/busybox sh\n/bin/busybox echo ${MARKER}\n/bin/busybox poweroff -f\n`;
  const cpio = new CpioWriter()
    .dir("bin")
    .dir("dev")
    .charDevice("dev/console", 5, 1)
    .file("bin/busybox", await readFile(BUSYBOX), 0o755)
    .file("init", Buffer.from(init), 0o755);
  await writeFile(file, cpio.finish());
}

const listen = (p: string) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(p, () => resolve(s));
  });

/** One floor boot: ms to the marker on the console, and to QEMU's exit. */
async function floorBoot(
  qemu: string,
  dir: string,
  argvFor: (consoleLog: string, agent: string, qmp: string) => string[],
): Promise<{ marker: number; exit: number }> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const consoleLog = path.join(dir, "console.log");
  const agent = path.join(dir, "agent.sock");
  const qmp = path.join(dir, "qmp.sock");
  // QEMU connects to both sockets at start (as it does with moat): something must listen.
  const servers = [await listen(agent), await listen(qmp)];
  const conns: Socket[] = [];
  for (const s of servers) s.on("connection", (c: Socket) => conns.push(c.on("error", () => {})));
  let child: ChildProcess | undefined;
  try {
    const t0 = performance.now();
    child = spawn(qemu, argvFor(consoleLog, agent, qmp), { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    let exitAt: number | undefined;
    const exited = new Promise<number | null>((resolve) =>
      child!.on("exit", (c) => {
        exitAt = performance.now();
        resolve(c);
      }),
    );
    let markerAt: number | undefined;
    const deadline = t0 + 120_000;
    while (markerAt === undefined && exitAt === undefined && performance.now() < deadline) {
      const text = await readFile(consoleLog, "utf8").catch(() => "");
      if (text.includes(MARKER)) markerAt = performance.now();
      else await new Promise((r) => setTimeout(r, 2));
    }
    if (markerAt === undefined) {
      // The marker may have been written just before the exit.
      const text = await readFile(consoleLog, "utf8").catch(() => "");
      if (exitAt !== undefined && text.includes(MARKER)) markerAt = exitAt;
      else throw new Error(`the floor VM printed no marker: ${stderr.trim()} ${text.slice(-300)}`);
    }
    const timeout = setTimeout(() => child?.kill("SIGKILL"), 60_000);
    const code = await exited;
    clearTimeout(timeout);
    if (code !== 0) throw new Error(`the floor VM's QEMU exited with ${code}: ${stderr.trim()}`);
    return { marker: markerAt - t0, exit: exitAt! - t0 };
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    for (const c of conns) c.destroy();
    for (const s of servers) s.close();
  }
}

/** moat vm through the Sandbox API: ms from createSandbox to the first byte of stdout. */
async function moatFirstOutput(
  ctx: BenchContext,
  n: number,
  template = false,
  disk = false,
): Promise<number> {
  const s = await store(ctx);
  const id = `bench-vmboot-${template ? "t" : ""}${disk ? "d" : ""}${n}`;
  const b = await createBundle(s, await ensureDefaultImage(s), path.join(ctx.work, `${id}-bundle`), {
    args: ["echo", "marker"],
  });
  const backend = await selectBackend("vm");
  let first: number | undefined;
  const stdout = new Writable({
    write: (_c, _e, cb) => {
      first ??= performance.now();
      cb();
    },
  });
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  // The vm backend reads MOAT_VM_TEMPLATE and MOAT_VM_ROOTFS as it boots each sandbox.
  const before = { template: process.env.MOAT_VM_TEMPLATE, rootfs: process.env.MOAT_VM_ROOTFS };
  process.env.MOAT_VM_TEMPLATE = template ? "1" : "0";
  process.env.MOAT_VM_ROOTFS = disk ? "block" : "9p";
  const t0 = performance.now();
  const sb = await backend
    .createSandbox({ id, stateDir: path.join(ctx.work, `${id}-state`), firstRootfs: b.rootfs })
    .catch(async (e: unknown) => {
      await removeBundle(b.dir);
      throw e;
    })
    .finally(() => {
      restoreEnv("MOAT_VM_TEMPLATE", before.template);
      restoreEnv("MOAT_VM_ROOTFS", before.rootfs);
    });
  const from = (sb as unknown as { bootedFrom?: string }).bootedFrom;
  try {
    // Inside the try: the bundle's overlay must be unmounted on this failure too.
    if (template && from !== "template")
      throw new Error(
        `the templated vm sandbox booted instead: ${(sb as unknown as { templateError?: string }).templateError}`,
      );
    await sb.create({ id, bundle: b.dir, spec: b.spec, rootfs: b.rootfs, stdio: { stdout, stderr: sink } });
    await sb.start(id);
    const st = await sb.wait(id);
    if (st.status !== 0 || first === undefined) throw new Error(`echo in the vm ended with ${st.status}`);
    return first - t0;
  } finally {
    await sb.destroy();
    await removeBundle(b.dir);
  }
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

export const vmboot: Scenario = {
  id: "vmboot",
  title: "VM boot to first output vs the bare QEMU floor",
  async run(ctx) {
    const problem = await moatProblem("vm");
    if (problem) return { id: this.id, title: this.title, skipped: problem };
    const {
      AGENT_PORT_NAME,
      chooseGuestAccel,
      DEFAULT_GUEST_MEMORY_MIB,
      ensureAssets,
      hostTscKhz,
      QEMU_BINARY,
      qemuArgv,
    } = await vmModules();
    const assets = await ensureAssets();
    const accel = await chooseGuestAccel(assets);
    const initrd = path.join(ctx.work, "floor-initrd.cpio");
    await floorInitrd(initrd);
    const argvFor = (consoleLog: string, agentSocket: string, qmpSocket: string) =>
      qemuArgv({
        accel: accel.accel,
        memoryMiB: DEFAULT_GUEST_MEMORY_MIB,
        cpus: 1,
        kernel: assets.kernel,
        initrd,
        consoleLog,
        agentSocket,
        agentPortName: AGENT_PORT_NAME,
        qmpSocket,
        ...(accel.accel === "tcg" ? { tscKhz: hostTscKhz() } : {}),
      });
    const runs = ctx.repeats + (ctx.quick ? 0 : 1);
    const marker: number[] = [];
    const exit: number[] = [];
    const moat: number[] = [];
    const cloned: number[] = [];
    const onDisk: number[] = [];
    // Makes the VM template (one boot), so the timed runs are clones.
    ctx.log("  making the VM template");
    await moatFirstOutput(ctx, -1, true);
    for (let i = 0; i < runs; i++) {
      ctx.log(`  floor boot ${i + 1}/${runs}`);
      const f = await floorBoot(QEMU_BINARY, path.join(ctx.work, "floor"), argvFor);
      ctx.log(`  moat vm ${i + 1}/${runs}`);
      const m = await moatFirstOutput(ctx, i);
      ctx.log(`  moat vm from a template ${i + 1}/${runs}`);
      const c = await moatFirstOutput(ctx, i, true);
      ctx.log(`  moat vm with its rootfs on a disk ${i + 1}/${runs}`);
      const d = await moatFirstOutput(ctx, i, false, true);
      // The first round warms the page cache (kernel, initramfs, QEMU) and is not kept.
      if (ctx.quick || i > 0) {
        marker.push(f.marker);
        exit.push(f.exit);
        moat.push(m);
        cloned.push(c);
        onDisk.push(d);
      }
    }
    await rm(path.join(ctx.work, "floor"), { recursive: true, force: true });
    return result({
      id: this.id,
      title: this.title,
      unit: "ms",
      baseline: "floor: marker",
      measurements: [
        measurement("floor: marker", marker),
        measurement("floor: QEMU exit", exit),
        measurement("moat vm: first stdout byte", moat),
        measurement("moat vm from a template: first stdout byte", cloned),
        measurement("moat vm, rootfs on a disk: first stdout byte", onDisk),
      ],
      notes: [
        `Accelerator: ${accel.accel} (${accel.reason}). ${DEFAULT_GUEST_MEMORY_MIB} MiB, 1 vCPU, for both.`,
        "Floor: moat's qemu-cmdline.ts argv with the same QEMU and kernel, but an initramfs of busybox alone whose /init echoes a marker and runs `poweroff -f`; timed from spawning QEMU to the marker in the console log (polled every 2 ms) and to QEMU's exit. It has no 9p share (moat's sandbox has one) and is not wrapped in setpriv.",
        "moat vm: from createSandbox (QEMU launch, Node + agent start in the guest, agent handshake) through create and start of a container running `echo marker` to its first stdout byte on the host.",
        "moat vm from a template (MOAT_VM_TEMPLATE=1; off by default): the same, but QEMU resumes a clone of a guest paused at a ready agent (its RAM file mapped copy-on-write, its device state loaded over a Unix socket) instead of booting; the template is made once before the timed runs. The container work in the guest (mounting its rootfs, starting it) is the same in both.",
        "moat vm, rootfs on a disk (MOAT_VM_ROOTFS=block): booted as the first row, but the container's rootfs is written into an erofs image before QEMU starts and read by the guest from a read-only virtio-blk disk instead of through 9p; the image's build is in the figure.",
        "Floor and moat runs alternate, so all see the same machine load.",
      ],
    });
  },
};
