// `moat logs`: what a detached container wrote.
import * as fs from "node:fs";
import type { ImageStore } from "../../image/store.js";
import { containerState } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import { parseWithCommand } from "../args.js";
import { logFile, resolveContainer, stateRoot } from "../containers.js";
import type { Output } from "../output.js";

/** Copy fd from pos to EOF onto our stdout, honouring back-pressure; returns the new position. */
async function copyToStdout(fd: number, pos: number): Promise<number> {
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) return pos;
    pos += n;
    if (!process.stdout.write(Buffer.from(buf.subarray(0, n)))) {
      await new Promise((r) => process.stdout.once("drain", r));
    }
  }
}

export async function cmdLogs(store: ImageStore, argv: string[], _out: Output): Promise<number> {
  const { values, positionals } = parseWithCommand(
    argv,
    { follow: { type: "boolean", short: "f" } },
    Number.POSITIVE_INFINITY,
  );
  if (positionals.length !== 1) throw new MoatError("EINVAL", "usage: moat logs [-f] CONTAINER");
  const id = await resolveContainer(store.root, positionals[0]!);
  let fd: number;
  try {
    fd = fs.openSync(logFile(store.root, id), "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0; // nothing written yet
    throw e;
  }
  try {
    let pos = await copyToStdout(fd, 0);
    if (!values.follow) return 0;
    // Follow until the container has stopped, then take what it wrote last.
    for (;;) {
      const info = await containerState(stateRoot(store.root), id).catch(() => undefined);
      const stopped = !info || info.status === "stopped";
      pos = await copyToStdout(fd, pos);
      if (stopped) return 0;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    fs.closeSync(fd);
  }
}
