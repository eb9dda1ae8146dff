// Selection: the only place that knows every backend. Front doors ask it for a backend by
// name ("vm", "userkernel" or "auto") and get a SandboxBackend, or a clear error saying why
// that isolation cannot run here.
import type { SandboxBackend } from "../sandbox/sandbox.js";
import type { Availability, IsolationName } from "../sandbox/types.js";
import { configFile, readHostConfig } from "../spec/config.js";
import { MoatError } from "../spec/errors.js";

export type IsolationChoice = IsolationName | "auto";

export const ISOLATIONS: IsolationChoice[] = ["auto", "vm", "userkernel"];

/** The backends built into this version of moat. A backend appears here once it runs containers. */
const registry: Partial<Record<IsolationName, () => Promise<SandboxBackend>>> = {
  vm: async () => new (await import("../vm/sandbox.js")).VmBackend(),
  userkernel: async () => new (await import("../userkernel/sandbox.js")).UserkernelBackend(),
};

const NOT_BUILT: Record<IsolationName, string> = {
  vm: "the vm isolation (QEMU microvm + guest agent) is not wired into sandboxes yet",
  userkernel: "the userkernel isolation (ptrace + TypeScript kernel) is not wired into sandboxes yet",
};

export function parseIsolation(text: string): IsolationChoice {
  if ((ISOLATIONS as string[]).includes(text)) return text as IsolationChoice;
  throw new MoatError("EINVAL", `unknown isolation "${text}": choose vm, userkernel or auto`);
}

export async function availability(name: IsolationName): Promise<Availability> {
  const make = registry[name];
  if (!make) return { available: false, reason: NOT_BUILT[name] };
  return (await make()).availability();
}

/** One-time preparation of a backend (guest assets, accelerator probe), with progress. */
export async function prepare(name: IsolationName, onStep: (step: string) => void): Promise<Availability> {
  const make = registry[name];
  if (!make) return { available: false, reason: NOT_BUILT[name] };
  return (await make()).prepare(onStep);
}

/** Whether auto would take this backend, given its availability: a vm only on hardware virtualisation. */
function autoTakes(name: IsolationName, a: Availability): boolean {
  return a.available && (name !== "vm" || a.hardware === true);
}

/** Why a backend was passed over, in the words selectBackend and moat doctor both use. */
function passedOver(name: IsolationName, a: Availability, auto: boolean): string {
  return `${name}: ${a.available && auto ? `${a.reason} (no hardware virtualisation, so auto does not pick it)` : a.reason}`;
}

/**
 * What auto picks on this host and why (moat doctor): the first of vm (with hardware
 * virtualisation) and userkernel that can run, with the reasons the ones before it were passed over.
 */
export function explainAuto(report: Record<IsolationName, Availability>): {
  picks?: IsolationName;
  why: string;
} {
  const passed: string[] = [];
  for (const name of ["vm", "userkernel"] as const) {
    const a = report[name];
    if (autoTakes(name, a)) {
      return {
        picks: name,
        why: passed.length ? `passed over ${passed.join("; ")}` : `${name}: ${a.reason}`,
      };
    }
    passed.push(passedOver(name, a, true));
  }
  return { why: `nothing can run here: ${passed.join("; ")}` };
}

/**
 * auto: vm where hardware virtualisation works, else userkernel (design.md). A vm under
 * software emulation (TCG) is chosen only by name: it works, but slowly.
 */
export async function selectBackend(choice: IsolationChoice): Promise<SandboxBackend> {
  const order: IsolationName[] = choice === "auto" ? ["vm", "userkernel"] : [choice];
  const reasons: string[] = [];
  for (const name of order) {
    const a = await availability(name);
    if (choice === "auto" ? autoTakes(name, a) : a.available) return registry[name]!();
    reasons.push(passedOver(name, a, choice === "auto"));
  }
  throw new MoatError("ENOTSUP", `no isolation backend can run this sandbox here (${reasons.join("; ")})`);
}

/** The annotation (in config.json, or a pod's annotations) that names a sandbox's isolation. */
export const ISOLATION_ANNOTATION = "run.moat.isolation";
/**
 * Which isolation a sandbox asks for, in the order every front door applies: the command
 * line's --isolation, then MOAT_ISOLATION in the environment, then the run.moat.isolation
 * annotation of the bundle (or pod), then the configuration file's default, then auto.
 */
export function chooseIsolation(opts: {
  flag?: string | undefined;
  annotations?: Record<string, string> | undefined;
  env?: NodeJS.ProcessEnv;
}): IsolationChoice {
  const env = opts.env ?? process.env;
  const given = opts.flag || env.MOAT_ISOLATION || opts.annotations?.[ISOLATION_ANNOTATION];
  if (given) return parseIsolation(given);
  const config = readHostConfig(env);
  if (config.isolation === undefined) return "auto";
  try {
    return parseIsolation(config.isolation);
  } catch (e) {
    throw new MoatError("EINVAL", `${configFile(env)}: ${(e as Error).message}`);
  }
}
