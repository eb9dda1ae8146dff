// `moat rm`: remove stopped containers (-f: running ones too) and everything they made.
import type { ImageStore } from "../../image/store.js";
import { containerState } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import { RM } from "../command-specs.js";
import { NAME_ANNOTATION, resolveContainer, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import type { Output } from "../output.js";
import { removeAll } from "./remove.js";

export async function cmdRm(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseCommand(RM, argv);
  if (positionals.length === 0) throw new MoatError("EINVAL", "usage: moat rm [-f] CONTAINER...");
  for (const text of positionals) {
    const id = await resolveContainer(store.root, text);
    const info = await containerState(stateRoot(store.root), id);
    if (info.status !== "stopped" && !values.force) {
      throw new MoatError(
        "ESTATE",
        `container ${text} is ${info.status}: stop it first with "moat kill ${text}", or remove it at once with "moat rm -f ${text}"`,
      );
    }
    await removeAll(store.root, id, info.annotations[NAME_ANNOTATION]);
    out.result({ removed: id }, text);
  }
  return 0;
}
