// The vm backend's public surface: guest assets, the hypervisor layer, booting a guest
// with its agent, and the VM Sandbox backend.
export { AgentClient } from "./agent-client.js";
export * from "./assets/index.js";
export { type BootedGuest, type BootOptions, bootGuest, DEFAULT_GUEST_MEMORY_MIB } from "./guest.js";
export * from "./hypervisor/index.js";
export { VmBackend } from "./sandbox.js";
