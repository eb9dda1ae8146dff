import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isMoatError } from "../../src/spec/errors.js";
import { hostTscKhz } from "../../src/vm/hypervisor/qemu.js";
import {
  GUEST_MAC,
  type QemuCmdlineConfig,
  qemuArgv,
  TCG_KERNEL_ARG,
} from "../../src/vm/hypervisor/qemu-cmdline.js";

const base: QemuCmdlineConfig = {
  accel: "tcg",
  memoryMiB: 256,
  cpus: 2,
  kernel: "/a/vmlinux",
  initrd: "/a/initramfs.cpio.gz",
  consoleLog: "/run/vm/console.log",
  agentSocket: "/run/vm/agent.sock",
  agentPortName: "moat.agent",
  qmpSocket: "/run/vm/qmp.sock",
};

/** The value following each occurrence of a flag. */
function values(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
}

describe("QEMU command line", () => {
  it("builds a microvm with console, QMP and the agent port", () => {
    const argv = qemuArgv(base);
    assert.deepEqual(values(argv, "-M"), ["microvm,x-option-roms=off,rtc=on,acpi=on"]);
    // A bounded translation cache: QEMU's default reserves 1 GiB and fills ~100 MiB of it.
    assert.deepEqual(values(argv, "-accel"), ["tcg,tb-size=64"]);
    assert.deepEqual(values(argv, "-cpu"), ["max"]);
    assert.deepEqual(values(argv, "-m"), ["256"]);
    assert.deepEqual(values(argv, "-smp"), ["2"]);
    for (const f of ["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"])
      assert.ok(argv.includes(f), f);
    assert.deepEqual(values(argv, "-sandbox"), [
      "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    ]);
    assert.deepEqual(values(argv, "-kernel"), ["/a/vmlinux"]);
    assert.deepEqual(values(argv, "-initrd"), ["/a/initramfs.cpio.gz"]);
    const append = values(argv, "-append");
    assert.equal(append.length, 1);
    for (const a of ["console=ttyS0", "panic=-1"]) assert.ok(append[0]!.split(" ").includes(a), a);
    assert.deepEqual(values(argv, "-chardev"), [
      "file,id=console,path=/run/vm/console.log",
      "socket,id=qmp,path=/run/vm/qmp.sock,server=off",
      "socket,id=agent,path=/run/vm/agent.sock,server=off",
    ]);
    assert.deepEqual(values(argv, "-serial"), ["chardev:console"]);
    assert.deepEqual(values(argv, "-mon"), ["chardev=qmp,mode=control"]);
    assert.deepEqual(values(argv, "-device"), [
      "virtio-serial-device",
      "virtserialport,chardev=agent,name=moat.agent,id=agentport",
    ]);
    assert.deepEqual(values(argv, "-fsdev"), []);
    assert.deepEqual(values(argv, "-drive"), []);
  });

  it("attaches the guest image as a read-only virtio-blk disk", () => {
    const argv = qemuArgv({ ...base, image: "/a/guest,1.erofs" });
    assert.deepEqual(values(argv, "-drive"), [
      "file=/a/guest,,1.erofs,if=none,id=image,format=raw,readonly=on",
    ]);
    assert.ok(values(argv, "-device").includes("virtio-blk-device,drive=image"));
    assert.throws(
      () => qemuArgv({ ...base, image: "relative.erofs" }),
      /image "relative.erofs" must be an absolute path/,
    );
  });

  it("uses the host CPU under KVM", () => {
    const argv = qemuArgv({ ...base, accel: "kvm" });
    assert.deepEqual(values(argv, "-accel"), ["kvm"]);
    assert.deepEqual(values(argv, "-cpu"), ["host"]);
  });

  it("adds 9p shares, read-only when asked", () => {
    const argv = qemuArgv({
      ...base,
      shares: [
        { tag: "rootfs", hostPath: "/srv/root", readonly: false },
        { tag: "ro", hostPath: "/srv/ro", readonly: true },
      ],
    });
    assert.deepEqual(values(argv, "-fsdev"), [
      "local,id=fs0,path=/srv/root,security_model=none",
      "local,id=fs1,path=/srv/ro,security_model=none,readonly=on",
    ]);
    assert.deepEqual(values(argv, "-device").slice(2), [
      "virtio-9p-device,fsdev=fs0,mount_tag=rootfs",
      "virtio-9p-device,fsdev=fs1,mount_tag=ro",
    ]);
  });

  it("escapes commas so a path cannot inject QEMU options", () => {
    const argv = qemuArgv({
      ...base,
      consoleLog: "/run/x,server=on/console.log",
      shares: [{ tag: "s", hostPath: "/srv/a,readonly=off", readonly: true }],
    });
    assert.ok(values(argv, "-chardev").includes("file,id=console,path=/run/x,,server=on/console.log"));
    assert.deepEqual(values(argv, "-fsdev"), [
      "local,id=fs0,path=/srv/a,,readonly=off,security_model=none,readonly=on",
    ]);
  });

  it("starts the guest's Node without a JIT under TCG only", () => {
    const words = (argv: string[]) => values(argv, "-append")[0]!.split(" ");
    assert.ok(words(qemuArgv(base)).includes(TCG_KERNEL_ARG));
    assert.ok(!words(qemuArgv({ ...base, accel: "kvm" })).includes(TCG_KERNEL_ARG));
  });

  it("passes the TSC rate and extra kernel arguments", () => {
    const append = values(
      qemuArgv({ ...base, tscKhz: 2096038, kernelArgs: ["loglevel=7"] }),
      "-append",
    )[0]!.split(" ");
    assert.ok(append.includes("tsc_early_khz=2096038"));
    assert.equal(append.at(-1), "loglevel=7");
  });

  it("rejects bad input with a clear error", () => {
    const bad = (c: Partial<QemuCmdlineConfig>) =>
      assert.throws(
        () => qemuArgv({ ...base, ...c }),
        (e: unknown) => isMoatError(e, "EINVAL"),
      );
    bad({ memoryMiB: 0 });
    bad({ cpus: 1.5 });
    bad({ kernel: "relative/vmlinux" });
    bad({ initrd: "/a/init\nrd" });
    bad({ kernelArgs: ["two words"] });
    bad({ agentSocket: `/${"x".repeat(120)}` });
    bad({ shares: [{ tag: "bad tag", hostPath: "/srv", readonly: true }] });
    bad({
      shares: [
        { tag: "t", hostPath: "/a", readonly: true },
        { tag: "t", hostPath: "/b", readonly: true },
      ],
    });
  });

  it("adds a NIC on moat's stream socket only when asked", () => {
    assert.deepEqual(values(qemuArgv(base), "-netdev"), []);
    assert.ok(!qemuArgv(base).some((a) => a.startsWith("virtio-net")));
    const argv = qemuArgv({ ...base, netSocket: "/run/vm,x/net.sock" });
    assert.deepEqual(values(argv, "-netdev"), [
      "stream,id=net0,server=off,addr.type=unix,addr.path=/run/vm,,x/net.sock",
    ]);
    assert.equal(values(argv, "-device").at(-1), `virtio-net-device,netdev=net0,mac=${GUEST_MAC}`);
    // QEMU's own user-mode network, which maps the gateway to the host's loopback, is never used.
    assert.ok(!argv.some((a) => a.startsWith("user,") || a.includes("hostfwd")));
    assert.throws(
      () => qemuArgv({ ...base, netSocket: `/${"x".repeat(120)}` }),
      (e: unknown) => isMoatError(e, "EINVAL") && /longer than/.test(e.message),
    );
    assert.throws(
      () => qemuArgv({ ...base, netSocket: "net.sock" }),
      (e: unknown) => isMoatError(e, "EINVAL") && /absolute path/.test(e.message),
    );
  });

  it("maps the guest RAM from a file, shared for a template and private for its clones", () => {
    assert.deepEqual(values(qemuArgv(base), "-object"), []);
    const make = qemuArgv({ ...base, memoryFile: { path: "/t,1/memory", shared: true } });
    assert.deepEqual(values(make, "-object"), [
      "memory-backend-file,id=ram,size=256M,mem-path=/t,,1/memory,share=on",
    ]);
    assert.deepEqual(values(make, "-machine"), ["memory-backend=ram"]);
    assert.deepEqual(values(make, "-incoming"), []);
    const { kernel: _k, initrd: _i, ...noBoot } = base;
    const clone = qemuArgv({ ...noBoot, memoryFile: { path: "/t/memory", shared: false }, incoming: true });
    assert.deepEqual(values(clone, "-object"), [
      "memory-backend-file,id=ram,size=256M,mem-path=/t/memory,share=off",
    ]);
    assert.deepEqual(values(clone, "-incoming"), ["defer"]);
    // A clone's kernel is in its memory already: QEMU keeps no copy of one.
    for (const f of ["-kernel", "-initrd", "-append"]) assert.deepEqual(values(clone, f), [], f);
    assert.throws(
      () => qemuArgv(noBoot),
      (e: unknown) => isMoatError(e, "EINVAL") && /needs a kernel and an initramfs/.test(e.message),
    );
  });

  it("adds read-only disks after the image, each with its serial", () => {
    const argv = qemuArgv({
      ...base,
      image: "/a/guest.erofs",
      disks: [{ path: "/s,1/rootfs-0.erofs", serial: "moat-rootfs-0" }],
    });
    assert.deepEqual(values(argv, "-drive"), [
      "file=/a/guest.erofs,if=none,id=image,format=raw,readonly=on",
      "file=/s,,1/rootfs-0.erofs,if=none,id=disk0,format=raw,readonly=on",
    ]);
    assert.ok(values(argv, "-device").includes("virtio-blk-device,drive=disk0,serial=moat-rootfs-0"));
    assert.throws(
      () => qemuArgv({ ...base, disks: [{ path: "/d", serial: "has space" }] }),
      (e: unknown) => isMoatError(e, "EINVAL") && /disk serial/.test(e.message),
    );
  });

  it("reads the host TSC rate from cpuinfo", () => {
    assert.equal(hostTscKhz("processor\t: 0\ncpu MHz\t\t: 2096.038\nflags\t: fpu\n"), 2096038);
    assert.equal(hostTscKhz("processor\t: 0\n"), undefined);
  });
});
