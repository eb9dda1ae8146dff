// Saving and restoring a paused VM's device state with QEMU's migration stream, the
// mechanism VM templates stand on (see vm/template.ts). The guest's RAM is not in the
// stream: it lives in a file (memory-backend-file), and the x-ignore-shared capability
// tells QEMU to leave such RAM out, so the stream holds only CPU and device state (about
// 100 KiB). QEMU's own sandbox forbids it to spawn (-sandbox spawn=deny), so the stream
// goes over a Unix socket moat listens on (save) or connects to (restore), never `exec:`.
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { setTimeout as delay } from "node:timers/promises";
import { MoatError } from "../../spec/errors.js";
import type { QmpClient } from "./qmp.js";

interface MigrationInfo {
  status?: string;
  "error-desc"?: string;
}

const CAPABILITIES = { capabilities: [{ capability: "x-ignore-shared", state: true }] };

/**
 * Pause the VM and write its device state to `file` (via a temp file and a rename, so
 * `file` is whole or absent). The VM stays paused; the caller ends it.
 */
export async function saveState(
  qmp: QmpClient,
  runDir: string,
  file: string,
  timeoutMs: number,
): Promise<void> {
  const sock = join(runDir, "migrate-out.sock");
  const tmp = `${file}.tmp-${process.pid}`;
  await rm(sock, { force: true });
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(sock, resolve);
  });
  try {
    const written = new Promise<void>((resolve, reject) => {
      server.once("connection", (c: Socket) => {
        pipeline(c, createWriteStream(tmp, { mode: 0o600, flush: true })).then(resolve, reject);
      });
    });
    written.catch(() => {});
    await qmp.execute("stop");
    await qmp.execute("migrate-set-capabilities", CAPABILITIES);
    await qmp.execute("migrate", { uri: `unix:${sock}` });
    await waitForMigration(qmp, timeoutMs, "saving the VM's state");
    await written;
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  } finally {
    server.close();
    await rm(sock, { force: true });
  }
}

/**
 * Load device state from `file` into a VM QEMU started with `-incoming defer`, then run
 * it. A stream QEMU cannot load makes QEMU exit; the caller races this with the exit.
 */
export async function restoreState(
  qmp: QmpClient,
  runDir: string,
  file: string,
  timeoutMs: number,
): Promise<void> {
  const sock = join(runDir, "migrate-in.sock");
  await rm(sock, { force: true });
  await qmp.execute("migrate-set-capabilities", CAPABILITIES);
  // QEMU listens on the socket by the time this returns.
  await qmp.execute("migrate-incoming", { uri: `unix:${sock}` });
  try {
    const c = connect(sock);
    await pipeline(createReadStream(file), c);
    await waitForMigration(qmp, timeoutMs, "restoring the VM's state");
  } finally {
    await rm(sock, { force: true });
  }
  // The state was saved from a paused VM, and a restored VM adopts that run state.
  const status = await qmp.execute<{ status: string }>("query-status");
  if (status.status !== "running") await qmp.execute("cont");
}

async function waitForMigration(qmp: QmpClient, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await qmp.execute<MigrationInfo>("query-migrate");
    if (info.status === "completed") return;
    if (info.status === "failed" || info.status === "cancelled") {
      throw new MoatError("EIO", `QEMU failed ${what}: ${info["error-desc"] ?? info.status}`);
    }
    if (Date.now() > deadline) throw new MoatError("ETIMEDOUT", `${what} took over ${timeoutMs} ms`);
    await delay(5);
  }
}
