// Sandbox sizing a bundle may ask for through config.json annotations, read by the monitor
// when it creates the sandbox (a runc caller has no flags for these).
import type { SandboxConfig } from "../sandbox/types.js";
import { MoatError } from "../spec/errors.js";

export const SIZING_ANNOTATIONS = {
  /** The VM's RAM (MiB, an integer); the userkernel takes it as a budget. */
  memory: "run.moat.memory",
  /** vCPUs, an integer. */
  cpus: "run.moat.cpus",
  /** nat | none. */
  network: "run.moat.network",
  /** host:guest TCP forwards, comma-separated: "8080:80,8443:443". */
  ports: "run.moat.ports",
} as const;

function positiveInt(name: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new MoatError(
      "EINVAL",
      `annotation ${name}="${text}" is not a positive integer: fix it in config.json`,
    );
  }
  return Number(text);
}

/** The SandboxConfig fields the annotations set; bad values are refused with the annotation's name. */
export function sandboxSizing(annotations: Record<string, string> | undefined): Partial<SandboxConfig> {
  const a = annotations ?? {};
  const out: Partial<SandboxConfig> = {};
  const mem = a[SIZING_ANNOTATIONS.memory];
  if (mem !== undefined) out.memoryMiB = positiveInt(SIZING_ANNOTATIONS.memory, mem);
  const cpus = a[SIZING_ANNOTATIONS.cpus];
  if (cpus !== undefined) out.cpus = positiveInt(SIZING_ANNOTATIONS.cpus, cpus);
  const net = a[SIZING_ANNOTATIONS.network];
  if (net !== undefined) {
    if (net !== "nat" && net !== "none") {
      throw new MoatError("EINVAL", `annotation ${SIZING_ANNOTATIONS.network}="${net}": use nat or none`);
    }
    out.network = net;
  }
  const ports = a[SIZING_ANNOTATIONS.ports];
  if (ports !== undefined && ports.trim() !== "") {
    out.ports = ports.split(",").map((p) => {
      const m = /^\s*(\d+):(\d+)\s*$/.exec(p);
      const host = Number(m?.[1]);
      const guest = Number(m?.[2]);
      if (!m || host < 1 || host > 65535 || guest < 1 || guest > 65535) {
        throw new MoatError(
          "EINVAL",
          `annotation ${SIZING_ANNOTATIONS.ports}: "${p}" is not HOST:GUEST with ports 1-65535`,
        );
      }
      return { host, guest };
    });
  }
  return out;
}
