// THE one place moat's QEMU command line is built: a pure function from a typed config
// to argv, so every flag is visible (and unit-tested) here and nowhere else.
import { isAbsolute } from "node:path";
import { MoatError } from "../../spec/errors.js";
import type { Accel, DiskConfig } from "./hypervisor.js";

export interface Share9pConfig {
  /** The mount tag the guest passes to `mount -t 9p <tag> <dir>`. */
  readonly tag: string;
  readonly hostPath: string;
  readonly readonly: boolean;
}

export interface QemuCmdlineConfig {
  readonly accel: Accel;
  readonly memoryMiB: number;
  readonly cpus: number;
  /**
   * The guest kernel and initramfs to boot. Both absent only with `incoming`: a restored
   * guest's kernel is already in its memory, and QEMU then keeps no copy of its own.
   */
  readonly kernel?: string;
  readonly initrd?: string;
  /**
   * The guest's RAM as a file (a VM template's memory). shared: the guest writes through
   * to the file (building a template); private: the file is mapped copy-on-write, so clones
   * share its pages and each one's writes stay its own. Absent: anonymous RAM.
   */
  readonly memoryFile?: { readonly path: string; readonly shared: boolean };
  /**
   * Start paused, waiting for device state over QMP (migrate-incoming): a clone restored
   * from a VM template instead of a boot.
   */
  readonly incoming?: boolean;
  /**
   * A read-only disk image the guest mounts (moat's guest image: Node and the agent), as
   * the first virtio-blk device (/dev/vda). Absent: no disk.
   */
  readonly image?: string;
  /**
   * More read-only disks after the image (a container's rootfs as an erofs image), each
   * named by a serial number the guest finds in /sys/block/vdX/serial.
   */
  readonly disks?: readonly DiskConfig[];
  /** Appended after moat's own kernel arguments. */
  readonly kernelArgs?: readonly string[];
  /** The guest's serial console is written here. */
  readonly consoleLog: string;
  /** Unix socket moat listens on; QEMU connects it to the `moat.agent` virtio-serial port. */
  readonly agentSocket: string;
  readonly agentPortName: string;
  /** Unix socket moat listens on; QEMU connects its QMP monitor to it. */
  readonly qmpSocket: string;
  readonly shares?: readonly Share9pConfig[];
  /**
   * Unix socket moat listens on; QEMU connects the VM's one NIC to it and exchanges
   * Ethernet frames (moat relays them to passt). Absent: no network device at all.
   */
  readonly netSocket?: string;
  /**
   * The guest TSC frequency in kHz, for TCG: there the guest reads the host's TSC, and
   * its own calibration against the emulated PIT fails at random on a busy host, after
   * which the guest hangs in early boot with no working clock.
   */
  readonly tscKhz?: number;
}

/**
 * Kernel arguments every guest gets. panic=-1 turns a panic into an immediate reboot,
 * and -no-reboot turns that reboot into QEMU exiting, so a dead guest is never a hang.
 */
export const BASE_KERNEL_ARGS = ["console=ttyS0", "panic=-1", "reboot=t", "quiet"] as const;

/** Added under TCG; the guest's /init reads it (vm/assets/init-script.ts JITLESS_ARG). */
export const TCG_KERNEL_ARG = "moat.jitless";

/**
 * The guest NIC's MAC address, fixed so moat can introduce the guest to passt (which
 * learns the guest's MAC only from a frame the guest sends) before the guest says anything.
 */
export const GUEST_MAC = "52:54:00:12:34:56";

/** Sockets moat connects to are named with sun_path, which holds 107 bytes plus NUL. */
export const MAX_SOCKET_PATH = 107;

const TAG = /^[A-Za-z0-9_.-]{1,31}$/;

export function qemuArgv(c: QemuCmdlineConfig): string[] {
  checkPositiveInt("memoryMiB", c.memoryMiB, 64);
  checkPositiveInt("cpus", c.cpus, 1);
  if (!c.incoming && (c.kernel === undefined || c.initrd === undefined)) {
    throw new MoatError("EINVAL", "a guest that boots needs a kernel and an initramfs");
  }
  for (const [what, p] of [
    ...(c.kernel !== undefined ? ([["kernel", c.kernel]] as const) : []),
    ...(c.initrd !== undefined ? ([["initrd", c.initrd]] as const) : []),
    ["consoleLog", c.consoleLog],
    ["agentSocket", c.agentSocket],
    ["qmpSocket", c.qmpSocket],
  ] as const) {
    checkPath(what, p);
  }
  if (c.netSocket !== undefined) checkPath("netSocket", c.netSocket);
  for (const s of [c.agentSocket, c.qmpSocket, ...(c.netSocket !== undefined ? [c.netSocket] : [])]) {
    if (Buffer.byteLength(s) > MAX_SOCKET_PATH) {
      throw new MoatError(
        "EINVAL",
        `socket path ${s} is longer than ${MAX_SOCKET_PATH} bytes; use a shorter run directory`,
      );
    }
  }
  if (!TAG.test(c.agentPortName))
    throw new MoatError("EINVAL", `virtio-serial port name "${c.agentPortName}" is invalid`);
  for (const a of c.kernelArgs ?? []) {
    if (a === "" || /[\s\0]/.test(a)) {
      throw new MoatError("EINVAL", `kernel argument "${a}" must be one non-empty word without whitespace`);
    }
  }

  const kernelArgs: string[] = [...BASE_KERNEL_ARGS];
  // Under TCG every piece of machine code V8 compiles is translated again by QEMU before it
  // runs: the guest's Node answers faster without a JIT (see the guest's /init).
  if (c.accel === "tcg") kernelArgs.push(TCG_KERNEL_ARG);
  if (c.tscKhz !== undefined) {
    checkPositiveInt("tscKhz", c.tscKhz, 1000);
    kernelArgs.push(`tsc_early_khz=${c.tscKhz}`);
  }
  const machine =
    c.accel === "kvm" ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", "tcg,tb-size=64", "-cpu", "max"];
  const argv = [
    "-M",
    "microvm,x-option-roms=off,rtc=on,acpi=on",
    ...machine,
    "-m",
    String(c.memoryMiB),
    "-smp",
    String(c.cpus),
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    "-no-reboot",
    // QEMU's seccomp filter: a guest that breaks into QEMU still cannot exec, raise
    // privileges or use obsolete syscalls.
    "-sandbox",
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    ...(c.kernel !== undefined && c.initrd !== undefined
      ? [
          "-kernel",
          c.kernel,
          "-initrd",
          c.initrd,
          "-append",
          [...kernelArgs, ...(c.kernelArgs ?? [])].join(" "),
        ]
      : []),
    "-chardev",
    `file,id=console,path=${opt(c.consoleLog)}`,
    "-serial",
    "chardev:console",
    "-chardev",
    `socket,id=qmp,path=${opt(c.qmpSocket)},server=off`,
    "-mon",
    "chardev=qmp,mode=control",
    "-chardev",
    `socket,id=agent,path=${opt(c.agentSocket)},server=off`,
    "-device",
    "virtio-serial-device",
    "-device",
    // QEMU reports the guest opening the port (VSERPORT_CHANGE) only for a device with an id.
    `virtserialport,chardev=agent,name=${c.agentPortName},id=agentport`,
  ];
  if (c.memoryFile !== undefined) {
    checkPath("memoryFile", c.memoryFile.path);
    argv.push(
      "-object",
      `memory-backend-file,id=ram,size=${c.memoryMiB}M,mem-path=${opt(c.memoryFile.path)},share=${c.memoryFile.shared ? "on" : "off"}`,
      "-machine",
      "memory-backend=ram",
    );
  }
  // The device state arrives later, over QMP (migrate-incoming), from a socket moat names.
  if (c.incoming) argv.push("-incoming", "defer");
  if (c.image !== undefined) {
    checkPath("image", c.image);
    // Read-only in QEMU too, so no guest can write to the image every sandbox shares.
    argv.push(
      "-drive",
      `file=${opt(c.image)},if=none,id=image,format=raw,readonly=on`,
      "-device",
      "virtio-blk-device,drive=image",
    );
  }
  for (const [i, d] of (c.disks ?? []).entries()) {
    checkPath("disk", d.path);
    if (!/^[A-Za-z0-9_.-]{1,20}$/.test(d.serial)) {
      throw new MoatError(
        "EINVAL",
        `disk serial "${d.serial}" must be 1-20 letters, digits, "_", "." or "-"`,
      );
    }
    argv.push(
      "-drive",
      `file=${opt(d.path)},if=none,id=disk${i},format=raw,readonly=on`,
      "-device",
      `virtio-blk-device,drive=disk${i},serial=${d.serial}`,
    );
  }
  const tags = new Set<string>();
  for (const [i, s] of (c.shares ?? []).entries()) {
    if (!TAG.test(s.tag)) {
      throw new MoatError(
        "EINVAL",
        `9p mount tag "${s.tag}" must be 1-31 characters of letters, digits, "_", "." or "-"`,
      );
    }
    if (tags.has(s.tag)) throw new MoatError("EINVAL", `9p mount tag "${s.tag}" is used twice`);
    tags.add(s.tag);
    checkPath("share hostPath", s.hostPath);
    argv.push(
      "-fsdev",
      `local,id=fs${i},path=${opt(s.hostPath)},security_model=none${s.readonly ? ",readonly=on" : ""}`,
      "-device",
      `virtio-9p-device,fsdev=fs${i},mount_tag=${s.tag}`,
    );
  }
  if (c.netSocket !== undefined) {
    // QEMU's stream netdev frames each packet with a 4-byte length, as passt does.
    argv.push(
      "-netdev",
      `stream,id=net0,server=off,addr.type=unix,addr.path=${opt(c.netSocket)}`,
      "-device",
      `virtio-net-device,netdev=net0,mac=${GUEST_MAC}`,
    );
  }
  return argv;
}

/** QEMU option values end at a comma; a literal comma is written twice. */
function opt(value: string): string {
  return value.replaceAll(",", ",,");
}

function checkPath(what: string, p: string): void {
  if (!isAbsolute(p) || /[\0\n]/.test(p)) {
    throw new MoatError(
      "EINVAL",
      `${what} "${p}" must be an absolute path without NUL or newline characters`,
    );
  }
}

function checkPositiveInt(what: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min)
    throw new MoatError("EINVAL", `${what} must be an integer >= ${min}, got ${v}`);
}
