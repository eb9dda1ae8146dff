// `moat inspect`: a JSON array, one object per container, in docker's shape (inspect-view.ts).
import * as fs from "node:fs";
import { readBundleSpec } from "../../image/bundle.js";
import type { ImageStore } from "../../image/store.js";
import { containerState } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import type { Spec } from "../../spec/runtime.js";
import { INSPECT } from "../command-specs.js";
import { bundleDir, resolveContainer, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import type { Output } from "../output.js";
import { inspectView } from "./inspect-view.js";

export const INSPECT_USAGE = "usage: moat inspect CONTAINER...";

export async function inspectContainer(root: string, id: string): Promise<Record<string, unknown>> {
  const info = await containerState(stateRoot(root), id);
  let spec: Spec | undefined;
  let created = info.created;
  try {
    spec = readBundleSpec(info.bundle);
    created = fs.statSync(`${bundleDir(root, id)}/config.json`).mtime.toISOString();
  } catch {
    // a bundle gone or broken: the record alone
  }
  return inspectView({ info, spec, created });
}

export async function cmdInspect(store: ImageStore, argv: string[], _out: Output): Promise<number> {
  const { positionals } = parseCommand(INSPECT, argv);
  if (positionals.length === 0) throw new MoatError("EINVAL", INSPECT_USAGE);
  // As docker: every container found is printed; one not found is an error after the array.
  const found: Record<string, unknown>[] = [];
  const errors: string[] = [];
  for (const text of positionals) {
    try {
      found.push(await inspectContainer(store.root, await resolveContainer(store.root, text)));
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }
  process.stdout.write(`${JSON.stringify(found, null, 4)}\n`);
  if (errors.length === 0) return 0;
  throw new MoatError("ENOENT", errors.join("; "));
}
