// `moat top`: the container's processes, as the container sees them: an exec of the image's
// `ps` (busybox's in the built-in image), with ps's options if given. The userkernel's /proc
// may list no processes yet: then moat says so rather than print an empty table.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ImageStore } from "../../image/store.js";
import { containerState, execInContainer } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import { TOP } from "../command-specs.js";
import { resolveContainer, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import type { Output } from "../output.js";

export const TOP_USAGE = "usage: moat top CONTAINER [PS-OPTIONS...]";

export async function cmdTop(store: ImageStore, argv: string[], _out: Output): Promise<number> {
  const { positionals, command } = parseCommand(TOP, argv);
  if (positionals.length !== 1) throw new MoatError("EINVAL", TOP_USAGE);
  const id = await resolveContainer(store.root, positionals[0]!);
  const sroot = stateRoot(store.root);
  const info = await containerState(sroot, id);
  if (info.status !== "running") {
    throw new MoatError("ESTATE", `container ${positionals[0]} is not running (${info.status})`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "moat-top-"));
  const fds: number[] = [];
  try {
    const outPath = path.join(dir, "out");
    const errPath = path.join(dir, "err");
    fds.push(
      fs.openSync("/dev/null", "r"),
      fs.openSync(outPath, "w", 0o600),
      fs.openSync(errPath, "w", 0o600),
    );
    const r = await execInContainer(
      sroot,
      id,
      { args: ["ps", ...command] },
      { stdio: [fds[0]!, fds[1]!, fds[2]!] },
    );
    const text = fs.readFileSync(outPath, "utf8");
    if (r.status !== 0) {
      const err = fs.readFileSync(errPath, "utf8").trim();
      throw new MoatError(
        r.status === 127 ? "ENOENT" : "EIO",
        `top runs "ps" in the container, which ${r.status === 127 ? "has none" : `failed (status ${r.status})`}${err ? `: ${err}` : ""}`,
      );
    }
    if (text.trim().split("\n").length < 2) {
      throw new MoatError(
        "ENOTSUP",
        `top: ps in the container lists no process: the ${info.isolation ?? ""} isolation's /proc does not show its processes yet`,
      );
    }
    process.stdout.write(text);
    return 0;
  } finally {
    for (const fd of fds) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
