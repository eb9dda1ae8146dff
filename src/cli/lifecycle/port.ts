// `moat port`: a container's -p forwards (kept as the run.moat.ports annotation), as docker prints them.
import type { ImageStore } from "../../image/store.js";
import { containerState } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import { PORT } from "../command-specs.js";
import { resolveContainer, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import type { Output } from "../output.js";
import { portsOf } from "./inspect-view.js";

export const PORT_USAGE = "usage: moat port CONTAINER [PORT[/tcp]]";

export async function cmdPort(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { positionals } = parseCommand(PORT, argv);
  if (positionals.length < 1 || positionals.length > 2) throw new MoatError("EINVAL", PORT_USAGE);
  let only: number | undefined;
  if (positionals[1] !== undefined) {
    const m = /^(\d{1,5})(\/tcp)?$/.exec(positionals[1]);
    if (!m) {
      throw new MoatError(
        "EINVAL",
        `"${positionals[1]}" is not a container port: give e.g. 80 or 80/tcp (moat forwards TCP only)`,
      );
    }
    only = Number(m[1]);
  }
  const id = await resolveContainer(store.root, positionals[0]!);
  const info = await containerState(stateRoot(store.root), id);
  const ports = portsOf(info.annotations).filter((p) => only === undefined || p.guest === only);
  if (only !== undefined && ports.length === 0) {
    throw new MoatError("ENOENT", `no public port '${only}/tcp' published for ${positionals[0]}`);
  }
  for (const p of ports) {
    const text = only !== undefined ? `127.0.0.1:${p.host}` : `${p.guest}/tcp -> 127.0.0.1:${p.host}`;
    if (out.forced)
      out.result({ containerPort: p.guest, protocol: "tcp", hostIp: "127.0.0.1", hostPort: p.host }, text);
    else process.stdout.write(`${text}\n`);
  }
  return 0;
}
