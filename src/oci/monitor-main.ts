// The per-container monitor: a detached process that owns one Sandbox for the life of one
// container, because a sandbox lives exactly as long as the process that created it. Its fds
// 0-2 are the container's stdio (a pty's slave when the container has a terminal); it
// reports on fd 3 once the container is created, then serves JSON-line requests (start,
// kill, state, wait, pause, resume) on the state directory's socket (monitor-control.ts)
// and execs (with their stdio as SCM_RIGHTS descriptors) on a second, SOCK_SEQPACKET
// socket (monitor-exec.ts), and exits with the container's status once it has recorded it
// (monitor-lifecycle.ts). This file is the entry: the order in which the container is
// created, and what a failed create leaves behind.
// argv: ROOT ID ISOLATION("" = choose) DEBUG("1"|"0") TTY("tty"|"") (monitor-context.ts)
import { readBundleSpec } from "../image/bundle.js";
import "../sys/threadpool.js";
import { chooseIsolation, selectBackend } from "../isolation/index.js";
import type { SandboxConfig } from "../sandbox/types.js";
import { runHooks } from "./hooks.js";
import { debugArg, id, isolationArg, log, mon, report, root, ttyArg } from "./monitor-context.js";
import { listen } from "./monitor-control.js";
import { listenExec } from "./monitor-exec.js";
import { finish } from "./monitor-lifecycle.js";
import { loadRecord, record, setStatus } from "./monitor-record.js";
import { errorReply } from "./monitor-reply.js";
import { sandboxSizing } from "./sizing.js";
import { processStart, sandboxDir, toState } from "./state.js";

async function main(): Promise<void> {
  process.on("SIGTERM", () => void finish(128 + 15));
  process.on("SIGINT", () => void finish(128 + 2));
  process.on("SIGHUP", () => {}); // the caller's terminal going away is not ours to die of
  await loadRecord();
  // Record ourselves first: from here on `delete --force` finds us by the state file too.
  await setStatus({ monitorPid: process.pid, monitorStart: processStart(process.pid) ?? "" });
  const spec = readBundleSpec(record.bundle);
  mon.spec = spec;
  const choice = chooseIsolation({ flag: isolationArg || undefined, annotations: spec.annotations });
  const sizing: Partial<SandboxConfig> = sandboxSizing(spec.annotations);
  const backend = await selectBackend(choice);
  log(`isolation ${backend.isolation} (asked: ${choice})`);
  const sandbox = await backend.createSandbox({
    ...sizing,
    id,
    stateDir: sandboxDir(root, id),
    firstRootfs: record.rootfs,
    debug: debugArg === "1",
  });
  mon.sandbox = sandbox;
  await sandbox.create({
    id,
    bundle: record.bundle,
    spec,
    rootfs: record.rootfs,
    stdio: {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      ...(ttyArg === "tty" ? { terminal: true } : {}),
    },
  });
  await listen();
  listenExec();
  const creating = toState(record, "creating");
  await runHooks(spec.hooks, "prestart", creating);
  await runHooks(spec.hooks, "createRuntime", creating);
  await runHooks(spec.hooks, "createContainer", creating);
  await setStatus({ status: "created", isolation: backend.isolation });
  log("created");
}

main().then(
  () => report("ok"),
  async (e: unknown) => {
    log(`create failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    report(JSON.stringify(errorReply(e)));
    mon.server?.close();
    await mon.sandbox?.destroy().catch(() => {});
    process.exit(1);
  },
);
