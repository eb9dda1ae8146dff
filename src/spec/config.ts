// moat's host configuration file: /etc/moat/config.json, or the file MOAT_CONFIG names.
// It holds the host operator's defaults, which no bundle, pod or image can set:
//   {"isolation": "vm" | "userkernel" | "auto",   the default isolation
//    "vmTemplate": true | false,                  vm sandboxes start from a VM template
//    "vmTemplateMaxAge": seconds,                 ... remade when older (default 3600)
//    "vmRootfs": "9p" | "block",                  how a vm sandbox's first rootfs reaches it
//    "registryMirrors": {"docker.io": ["127.0.0.1:5000"]}}  registries tried, in order, before
//                                                 the one an image names (pull-through caches)
// A missing file means the built-in defaults; a file that cannot be parsed is an error,
// never silently ignored, because it may carry a security decision.
import { readFileSync } from "node:fs";
import { MoatError } from "./errors.js";

export const DEFAULT_CONFIG_FILE = "/etc/moat/config.json";

export interface HostConfig {
  /** Checked by the isolation layer, which knows the names. */
  readonly isolation?: string;
  readonly vmTemplate?: boolean;
  readonly vmTemplateMaxAge?: number;
  readonly vmRootfs?: "9p" | "block";
  /** Registry host -> mirror hosts tried first, in order (as containerd's hosts.toml and docker's registry-mirrors). */
  readonly registryMirrors?: Readonly<Record<string, readonly string[]>>;
}

export function configFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.MOAT_CONFIG || DEFAULT_CONFIG_FILE;
}

export function readHostConfig(env: NodeJS.ProcessEnv = process.env): HostConfig {
  const file = configFile(env);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return {}; // no configuration file: the built-in defaults
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new MoatError("EINVAL", `${file} is not valid JSON (${(e as Error).message}): fix it or remove it`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new MoatError("EINVAL", `${file} must hold one JSON object, like {"isolation": "vm"}`);
  }
  const o = raw as Record<string, unknown>;
  if (o.isolation !== undefined && typeof o.isolation !== "string") {
    throw new MoatError("EINVAL", `${file}: "isolation" must be a string: vm, userkernel or auto`);
  }
  if (o.vmTemplate !== undefined && typeof o.vmTemplate !== "boolean") {
    throw new MoatError("EINVAL", `${file}: "vmTemplate" must be true or false`);
  }
  if (
    o.vmTemplateMaxAge !== undefined &&
    (typeof o.vmTemplateMaxAge !== "number" ||
      !Number.isInteger(o.vmTemplateMaxAge) ||
      o.vmTemplateMaxAge < 0)
  ) {
    throw new MoatError("EINVAL", `${file}: "vmTemplateMaxAge" must be a whole number of seconds`);
  }
  if (o.vmRootfs !== undefined && o.vmRootfs !== "9p" && o.vmRootfs !== "block") {
    throw new MoatError("EINVAL", `${file}: "vmRootfs" must be "9p" or "block"`);
  }
  const mirrors = o.registryMirrors;
  if (
    mirrors !== undefined &&
    (typeof mirrors !== "object" ||
      mirrors === null ||
      Array.isArray(mirrors) ||
      !Object.values(mirrors).every((l) => Array.isArray(l) && l.every((h) => typeof h === "string")))
  ) {
    throw new MoatError(
      "EINVAL",
      `${file}: "registryMirrors" must map a registry to a list of mirror hosts, like {"docker.io": ["127.0.0.1:5000"]}`,
    );
  }
  return {
    ...(mirrors !== undefined ? { registryMirrors: mirrors as Record<string, string[]> } : {}),
    ...(o.isolation !== undefined ? { isolation: o.isolation as string } : {}),
    ...(o.vmTemplate !== undefined ? { vmTemplate: o.vmTemplate as boolean } : {}),
    ...(o.vmTemplateMaxAge !== undefined ? { vmTemplateMaxAge: o.vmTemplateMaxAge as number } : {}),
    ...(o.vmRootfs !== undefined ? { vmRootfs: o.vmRootfs as "9p" | "block" } : {}),
  };
}

// The vm settings below: each an environment variable over the file's key. `host` reads the
// file only when the variable is unset; a caller asking for several passes one reader that
// reads it once.

/**
 * Whether vm sandboxes start from a VM template (vm/template.ts): MOAT_VM_TEMPLATE (1 or
 * 0) over the configuration file's "vmTemplate"; off by default, as in Kata, because
 * clones share their template's kernel layout (KASLR) and its memory pages.
 */
export function vmTemplateEnabled(
  env: NodeJS.ProcessEnv = process.env,
  host: () => HostConfig = () => readHostConfig(env),
): boolean {
  const v = env.MOAT_VM_TEMPLATE;
  if (v !== undefined && v !== "") {
    if (v === "1" || v === "true") return true;
    if (v === "0" || v === "false") return false;
    throw new MoatError("EINVAL", `MOAT_VM_TEMPLATE="${v}" must be 1 or 0`);
  }
  return host().vmTemplate ?? false;
}

/**
 * How old a VM template may be before it is remade, in seconds: MOAT_VM_TEMPLATE_MAX_AGE
 * over the configuration file's "vmTemplateMaxAge"; undefined: the vm layer's default.
 */
export function vmTemplateMaxAge(
  env: NodeJS.ProcessEnv = process.env,
  host: () => HostConfig = () => readHostConfig(env),
): number | undefined {
  const v = env.MOAT_VM_TEMPLATE_MAX_AGE;
  if (v !== undefined && v !== "") {
    if (!/^\d+$/.test(v))
      throw new MoatError("EINVAL", `MOAT_VM_TEMPLATE_MAX_AGE="${v}" must be a whole number of seconds`);
    return Number(v);
  }
  return host().vmTemplateMaxAge;
}

/**
 * How the vm isolation hands the guest the rootfs of a sandbox's first container:
 * MOAT_VM_ROOTFS over the configuration file's "vmRootfs"; default 9p (bench/ measures
 * both: an erofs image on a disk reads faster but costs its build at every start).
 */
export function vmRootfsMode(
  env: NodeJS.ProcessEnv = process.env,
  host: () => HostConfig = () => readHostConfig(env),
): "9p" | "block" {
  const v = env.MOAT_VM_ROOTFS;
  if (v !== undefined && v !== "") {
    if (v === "9p" || v === "block") return v;
    throw new MoatError("EINVAL", `MOAT_VM_ROOTFS="${v}" must be 9p or block`);
  }
  return host().vmRootfs ?? "9p";
}
