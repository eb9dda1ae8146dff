// Shared by the rootfs tests: a bundle of moat's built-in busybox image in a temp dir, and
// running a container path under the userkernel against it with captured stdio.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { createBundle } from "../../src/image/bundle.js";
import { DEFAULT_IMAGE, ensureDefaultImage } from "../../src/image/default-image.js";
import { ImageStore } from "../../src/image/store.js";
import { type RunOptions, runStatic } from "../../src/userkernel/kernel/run.js";
import { Collector, type Outcome } from "./helpers.js";

export interface BusyboxBundle {
  /** The temp dir holding the store and the bundle; remove() deletes it. */
  base: string;
  rootfs: string;
  remove(): Promise<void>;
}

/** A copy-mode bundle of the built-in image (Debian's busybox-static) in a new temp dir. */
export async function busyboxBundle(): Promise<BusyboxBundle> {
  const base = await mkdtemp(path.join(tmpdir(), "userkernel-rootfs-"));
  try {
    const store = await ImageStore.open(path.join(base, "store"));
    await ensureDefaultImage(store);
    const b = await createBundle(store, DEFAULT_IMAGE, path.join(base, "bundle"), { rootfsMode: "copy" });
    return { base, rootfs: b.rootfs, remove: () => rm(base, { recursive: true, force: true }) };
  } catch (e) {
    await rm(base, { recursive: true, force: true });
    throw e;
  }
}

export const BUSYBOX_ENV = ["PATH=/bin:/usr/bin"];

/** Run `argv` (argv[0] is searched in PATH) in `rootfs`, capturing stdout and stderr. */
export async function runIn(
  rootfs: string,
  argv: string[],
  extra: Partial<RunOptions> & { input?: string | Buffer } = {},
): Promise<Outcome & { log: string[] }> {
  const stdout = new Collector();
  const stderr = new Collector();
  const log: string[] = [];
  const { input, ...rest } = extra;
  const r = await runStatic({
    rootfs,
    binary: argv[0]!,
    argv,
    env: BUSYBOX_ENV,
    stdout,
    stderr,
    log: (l) => log.push(l),
    // Not PID 1 unless asked, as the native run (a chroot) is no init: Linux shields an init
    // from the signals it has no handler for.
    init: false,
    ...(input !== undefined ? { stdin: Readable.from([Buffer.from(input)]) } : {}),
    ...rest,
  });
  const o: Outcome & { log: string[] } = { stdout: stdout.text(), stderr: stderr.text(), log };
  if (r.code !== undefined) o.code = r.code;
  if (r.signal !== undefined) o.signal = r.signal;
  return o;
}

/** A digest of a whole tree: every name, type, mode, owner, size, content and link target. */
export function treeHash(root: string): string {
  const h = createHash("sha256");
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      h.update(`${path.relative(root, p)}\0${st.mode}\0${st.uid}:${st.gid}\0${st.size}\0${st.mtimeMs}\0`);
      if (st.isSymbolicLink()) h.update(fs.readlinkSync(p));
      else if (st.isFile()) h.update(fs.readFileSync(p));
      else if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return h.digest("hex");
}
