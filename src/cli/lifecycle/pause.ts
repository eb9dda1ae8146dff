// `moat pause` / `moat unpause`: freeze and thaw a container through the OCI layer. The vm
// isolation freezes the whole VM; the userkernel refuses, saying why (src/oci/pause.ts).
import type { ImageStore } from "../../image/store.js";
import { pauseContainer, resumeContainer } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import { PAUSE, UNPAUSE } from "../command-specs.js";
import { resolveContainer, stateRoot } from "../containers.js";
import { type CommandSpec, parseCommand } from "../flags.js";
import type { Output } from "../output.js";

export const PAUSE_USAGE = "usage: moat pause CONTAINER...";
export const UNPAUSE_USAGE = "usage: moat unpause CONTAINER...";

function each(
  spec: CommandSpec,
  usage: string,
  fn: (root: string, id: string) => Promise<void>,
  done: string,
) {
  return async (store: ImageStore, argv: string[], out: Output): Promise<number> => {
    const { positionals } = parseCommand(spec, argv);
    if (positionals.length === 0) throw new MoatError("EINVAL", usage);
    for (const text of positionals) {
      const id = await resolveContainer(store.root, text);
      await fn(stateRoot(store.root), id);
      out.result({ id, [done]: true }, text);
    }
    return 0;
  };
}

export const cmdPause = each(PAUSE, PAUSE_USAGE, pauseContainer, "paused");
export const cmdUnpause = each(UNPAUSE, UNPAUSE_USAGE, resumeContainer, "unpaused");
