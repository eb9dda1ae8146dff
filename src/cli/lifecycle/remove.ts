// Removing a container and everything it made, shared by rm, run -d's failure path and --rm.
import * as fs from "node:fs";
import { removeBundle } from "../../image/bundle.js";
import { deleteContainer } from "../../oci/api.js";
import { bundleDir, errLogFile, logFile, releaseName, stateRoot } from "../containers.js";

/** Remove every trace of a container: its OCI state (killing what is left), bundle, logs and name. */
export async function removeAll(root: string, id: string, name: string | undefined): Promise<void> {
  await deleteContainer(stateRoot(root), id, { force: true });
  if (fs.existsSync(bundleDir(root, id))) await removeBundle(bundleDir(root, id));
  await fs.promises.rm(logFile(root, id), { force: true });
  await fs.promises.rm(errLogFile(root, id), { force: true });
  await releaseName(root, name, id);
}
