// moat run: image -> bundle -> sandbox -> one container, its stdio wired to this terminal,
// its exit status as ours. Everything it made is removed when it ends, however it ends.
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { createBundle, removeBundle } from "../image/bundle.js";
import type { ImageStore } from "../image/store.js";
import { parseIsolation, selectBackend } from "../isolation/index.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { parseSignal } from "../sandbox/signals.js";
import { MoatError } from "../spec/errors.js";
import { parseWithCommand } from "./args.js";
import { imageName } from "./image-commands.js";
import type { Output } from "./output.js";

const USAGE =
  "usage: moat run [--isolation vm|userkernel|auto] [-i] [-e K=V] [-w DIR] [-u USER] [--hostname H] [--keep] IMAGE [CMD...]";

export async function cmdRun(store: ImageStore, argv: string[], _out: Output): Promise<number> {
  const { values, positionals, command } = parseWithCommand(
    argv,
    {
      isolation: { type: "string" },
      interactive: { type: "boolean", short: "i" },
      tty: { type: "boolean", short: "t" },
      env: { type: "string", short: "e", multiple: true },
      workdir: { type: "string", short: "w" },
      user: { type: "string", short: "u" },
      hostname: { type: "string" },
      keep: { type: "boolean" },
      rm: { type: "boolean" },
    },
    1,
  );
  if (positionals.length === 0 && command.length > 0) throw new MoatError("EINVAL", USAGE);
  const isolation = parseIsolation(values.isolation ?? process.env.MOAT_ISOLATION ?? "auto");
  const name = await imageName(store, positionals[0] ?? "default");
  // Pick the backend before unpacking anything: a host that cannot run it learns so at once.
  const backend = await selectBackend(isolation);
  const id = `moat-${randomBytes(6).toString("hex")}`;
  const dir = path.join(store.root, "bundles", id);
  const bundle = await createBundle(store, name, dir, {
    ...(command.length ? { args: command } : {}),
    ...(values.env ? { env: values.env } : {}),
    ...(values.workdir ? { cwd: values.workdir } : {}),
    ...(values.user ? { user: values.user } : {}),
    ...(values.hostname ? { hostname: values.hostname } : {}),
    ...(values.tty ? { terminal: true } : {}),
  });
  let sandbox: Sandbox | undefined;
  const forward = (sig: NodeJS.Signals) => {
    sandbox?.signal(id, parseSignal(sig)).catch(() => {});
  };
  try {
    sandbox = await backend.createSandbox({
      id,
      stateDir: path.join(store.root, "sandboxes", id),
      debug: Boolean(process.env.MOAT_DEBUG),
    });
    await sandbox.create({
      id,
      bundle: bundle.dir,
      spec: bundle.spec,
      rootfs: bundle.rootfs,
      stdio: {
        ...(values.interactive ? { stdin: process.stdin } : {}),
        stdout: process.stdout,
        stderr: process.stderr,
        ...(values.tty ? { terminal: true } : {}),
      },
    });
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    await sandbox.start(id);
    const status = await sandbox.wait(id);
    return status.status;
  } finally {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    if (values.interactive) process.stdin.destroy();
    await sandbox?.destroy();
    if (!values.keep) await removeBundle(bundle.dir);
  }
}
