export { ACCEL_CACHE, type AccelChoice, type ChooseAccelOptions, chooseAccel } from "./accel.js";
export type { Accel, Hypervisor, RunningVm, ShareConfig, VmConfig, VmExit } from "./hypervisor.js";
export { QEMU_BINARY, QemuHypervisor } from "./qemu.js";
export { BASE_KERNEL_ARGS, type QemuCmdlineConfig, qemuArgv, type Share9pConfig } from "./qemu-cmdline.js";
export { QmpClient, type QmpEvent } from "./qmp.js";
