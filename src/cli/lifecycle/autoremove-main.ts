// `moat run -d --rm`'s remover: a detached process (in a session of its own, so no terminal's
// signal reaches it) that waits for the container to stop and then removes everything it made,
// as rm would. argv: ROOT ID. A container removed meanwhile (moat rm -f) leaves it nothing to do.
import { containerState, waitContainer } from "../../oci/api.js";
import { NAME_ANNOTATION, stateRoot } from "../containers.js";
import { removeAll } from "./remove.js";

const [root = "", id = ""] = process.argv.slice(2);

async function main(): Promise<void> {
  const sroot = stateRoot(root);
  await waitContainer(sroot, id);
  const info = await containerState(sroot, id);
  if (info.status !== "stopped") return; // started again by hand: it is the new run's
  await removeAll(root, id, info.annotations[NAME_ANNOTATION]);
}

process.on("SIGHUP", () => {});
main().then(
  () => process.exit(0),
  () => process.exit(1),
);
