export {
  BUSYBOX_PACKAGE,
  type EnsureAssetsOptions,
  ensureAssets,
  GUEST_MODULES,
  type GuestAssets,
  KERNEL_META_PACKAGE,
} from "./build.js";
export { CpioWriter } from "./cpio.js";
export { AGENT_PORT_NAME } from "./init-script.js";
export { ASSETS_VERSION, assetDir, type Manifest, moatRoot, readManifest } from "./manifest.js";
export { type ModuleEntry, moduleName, parseModulesDep, resolveLoadOrder } from "./modules.js";
export { defaultProgress, type ProgressFn } from "./progress.js";
