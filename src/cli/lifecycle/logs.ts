// `moat logs`: what a detached container wrote, its stdout on our stdout and its stderr on our
// stderr (two files: see log-files.ts); -f follows until it stops, --tail N starts N lines
// from the end of each stream. Each stream keeps its own order; the order between the two is
// not recorded, as for any two pipes.
import * as fs from "node:fs";
import type { ImageStore } from "../../image/store.js";
import { containerState } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import { LOGS } from "../command-specs.js";
import { errLogFile, logFile, resolveContainer, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import type { Output } from "../output.js";

export const LOGS_USAGE = "usage: moat logs [-f] [--tail N] CONTAINER";
export const LOGS_FLAGS = {
  follow: { type: "boolean", short: "f" },
  tail: { type: "string", short: "n" },
  timestamps: { type: "boolean", short: "t" },
} as const;

/** Copy fd from pos to EOF onto a stream, honouring back-pressure; returns the new position. */
async function copyTo(fd: number, pos: number, to: NodeJS.WriteStream): Promise<number> {
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) return pos;
    pos += n;
    if (!to.write(Buffer.from(buf.subarray(0, n)))) await new Promise((r) => to.once("drain", r));
  }
}

/** Where the last `lines` lines of the file begin (a last line without "\n" counts as one). */
function tailStart(fd: number, lines: number): number {
  const size = fs.fstatSync(fd).size;
  if (lines <= 0) return size;
  const buf = Buffer.alloc(64 * 1024);
  let end = size;
  let seen = 0;
  // A final newline ends the last line rather than starting an empty one.
  let skipLast = false;
  if (size > 0) {
    fs.readSync(fd, buf, 0, 1, size - 1);
    skipLast = buf[0] === 0x0a;
  }
  while (end > 0) {
    const start = Math.max(0, end - buf.length);
    const n = fs.readSync(fd, buf, 0, end - start, start);
    for (let i = n - 1; i >= 0; i--) {
      if (buf[i] !== 0x0a) continue;
      if (skipLast && start + i === size - 1) continue;
      if (++seen === lines) return start + i + 1;
    }
    end = start;
  }
  return 0;
}

function openIfThere(p: string): number | undefined {
  try {
    return fs.openSync(p, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined; // nothing written yet
    throw e;
  }
}

/**
 * Copy the container's logs from the given offsets (undefined: from the start) to our stdout
 * and stderr; with follow, until the container has stopped.
 */
export async function streamLogs(
  root: string,
  id: string,
  opts: { follow: boolean; from?: [number, number]; tail?: number },
): Promise<void> {
  const files: Array<{ fd?: number; pos: number; to: NodeJS.WriteStream; path: string }> = [
    { path: logFile(root, id), pos: opts.from?.[0] ?? 0, to: process.stdout },
    { path: errLogFile(root, id), pos: opts.from?.[1] ?? 0, to: process.stderr },
  ];
  try {
    const pump = async () => {
      for (const f of files) {
        if (f.fd === undefined) {
          f.fd = openIfThere(f.path);
          if (f.fd !== undefined && opts.tail !== undefined) f.pos = tailStart(f.fd, opts.tail);
        }
        if (f.fd !== undefined) f.pos = await copyTo(f.fd, f.pos, f.to);
      }
    };
    await pump();
    if (!opts.follow) return;
    // Follow until the container has stopped, then take what it wrote last.
    for (;;) {
      const info = await containerState(stateRoot(root), id).catch(() => undefined);
      const stopped = !info || info.status === "stopped";
      await pump();
      if (stopped) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    for (const f of files) if (f.fd !== undefined) fs.closeSync(f.fd);
  }
}

export async function cmdLogs(store: ImageStore, argv: string[], _out: Output): Promise<number> {
  const { values, positionals } = parseCommand(LOGS, argv);
  if (positionals.length !== 1) throw new MoatError("EINVAL", LOGS_USAGE);
  if (values.timestamps) {
    throw new MoatError(
      "ENOTSUP",
      "logs --timestamps: moat keeps a container's output as written, without times; drop -t",
    );
  }
  let tail: number | undefined;
  if (values.tail !== undefined && values.tail !== "all") {
    if (!/^\d+$/.test(values.tail)) {
      throw new MoatError(
        "EINVAL",
        `--tail "${values.tail}" is not a number of lines: use e.g. --tail 20 or --tail all`,
      );
    }
    tail = Number(values.tail);
  }
  const id = await resolveContainer(store.root, positionals[0]!);
  await streamLogs(store.root, id, {
    follow: Boolean(values.follow),
    ...(tail !== undefined ? { tail } : {}),
  });
  return 0;
}
