// moat setup / moat doctor: what this host can run, and the one-time work to get there.
import * as os from "node:os";
import type { ImageStore } from "../image/store.js";
import { availability, chooseIsolation, explainAuto, prepare } from "../isolation/index.js";
import type { Availability, IsolationName } from "../sandbox/types.js";
import { vmTemplateEnabled } from "../spec/config.js";
import { MoatError } from "../spec/errors.js";
import { SETUP } from "./command-specs.js";
import { parseCommand } from "./flags.js";
import type { Output } from "./output.js";

const ALL: IsolationName[] = ["vm", "userkernel"];

function describe(name: string, a: Availability): string {
  const mode = a.available ? (a.hardware ? "ready (hardware virtualisation)" : "ready") : "unavailable";
  return `${name.padEnd(11)} ${mode}: ${a.reason}`;
}

/** Build what the backends need (guest kernel and image, accelerator probe), with progress. */
export async function cmdSetup(_store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values } = parseCommand(SETUP, argv);
  const names = values.isolation ? [values.isolation] : ALL;
  let failed = false;
  for (const name of names) {
    if (!(ALL as string[]).includes(name))
      throw new MoatError("EINVAL", `unknown isolation "${name}": vm or userkernel`);
    const step = (s: string) => {
      out.event({ isolation: name, step: s });
      if (process.stderr.isTTY && !out.forced) process.stderr.write(`moat setup: ${name}: ${s}\n`);
    };
    let a: Availability;
    try {
      a = await prepare(name as IsolationName, step);
    } catch (e) {
      a = { available: false, reason: (e as Error).message };
    }
    failed ||= !a.available;
    out.result({ isolation: name, ...a }, describe(name, a));
  }
  return failed ? 1 : 0;
}

export async function cmdDoctor(_store: ImageStore, _argv: string[], out: Output): Promise<number> {
  const host = { node: process.version, kernel: os.release(), arch: process.arch, cpus: os.cpus().length };
  const report = {} as Record<IsolationName, Availability>;
  for (const name of ALL) report[name] = await availability(name);
  const vmTemplate = vmTemplateEnabled();
  // The default a sandbox gets when nothing names one (MOAT_ISOLATION, the configuration file),
  // and what auto resolves to on this host.
  const defaultIsolation = chooseIsolation({});
  const auto = explainAuto(report);
  const autoLine = auto.picks ? `picks ${auto.picks}: ${auto.why}` : auto.why;
  out.result(
    { host, ...report, default: defaultIsolation, auto: { ...auto }, vmTemplate },
    [
      `host        Linux ${host.kernel} ${host.arch}, ${host.cpus} cpus, Node ${host.node}`,
      ...ALL.map((n) => describe(n, report[n]!)),
      `default     ${defaultIsolation}${defaultIsolation === "auto" ? "" : " (MOAT_ISOLATION or the configuration file)"}`,
      `auto        ${autoLine}`,
      `vm template ${vmTemplate ? "on: vm sandboxes resume clones of a paused guest" : 'off: each vm sandbox boots (MOAT_VM_TEMPLATE=1 or "vmTemplate": true turns templates on)'}`,
    ].join("\n"),
  );
  return 0;
}
