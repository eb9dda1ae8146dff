// The vm backend's public surface so far: guest assets, the hypervisor layer, and the
// stand-in shell channel that proves the guest boots and talks.
export * from "./assets/index.js";
export { type BootedGuest, type BootOptions, bootGuest } from "./guest.js";
export * from "./hypervisor/index.js";
export { ShellChannel, type ShellResult } from "./shell-channel.js";
