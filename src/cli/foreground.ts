// A foreground `moat run` owns its sandbox the way docker's client owns its container:
//  - what it makes is recorded before it is made (src/sys/run-records.ts: ROOT/runs/<id>.json),
//    so a run killed at any point is undone by the next moat command (reapLeftovers);
//  - SIGINT, SIGTERM and SIGHUP go to the container; a second SIGINT within 3 s kills it;
//    moat's exit status is the container's (128+n for a signal death);
//  - `moat ps` lists it and `moat kill`/`moat stop` reach it, through a small Unix socket named
//    in its record (one JSON line per request: {"signal": "SIGTERM"} or {"wait": true}).
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { ImageStore } from "../image/store.js";
import type { Sandbox, SandboxBackend } from "../sandbox/sandbox.js";
import { parseSignal, type Signal, SignalNumbers } from "../sandbox/signals.js";
import type { ExitStatus, SandboxConfig } from "../sandbox/types.js";
import { MoatError } from "../spec/errors.js";
import type { Spec } from "../spec/runtime.js";
import { descendantsOf } from "../sys/pids.js";
import {
  listRunRecords,
  ownerAlive,
  type RunRecord,
  RunRecorder,
  reapDeadRuns,
  reapRun,
  runsDir,
} from "../sys/run-records.js";
import { testKillPoint } from "../sys/test-kill.js";

/** A second Ctrl-C within this long kills the container (docker's client: the same idea). */
export const SECOND_INTERRUPT_MS = 3000;
const FORWARDED: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
/** Longest socket path the kernel takes (sun_path, with its NUL). */
const SUN_PATH_MAX = 107;

export interface OpenedBundle {
  dir: string;
  spec: Spec;
  rootfs: string;
}

export interface ForegroundOptions {
  store: ImageStore;
  backend: SandboxBackend;
  id: string;
  /** The image (or bundle directory) as the user typed it, for `moat ps`. */
  image: string;
  /** The bundle directory moat makes for this run (absent: the user's bundle, never touched). */
  bundleDir?: string;
  /** --keep: the bundle stays once the run ends. */
  keepBundle: boolean;
  /** Make (or open) the bundle; `leaseId` is the id its image-store lease must take. */
  makeBundle(leaseId: string | undefined): Promise<OpenedBundle>;
  /** Remove the bundle moat made. */
  removeBundle(dir: string): Promise<void>;
  /** The sandbox's settings, but for what the run itself decides (id, state dir, first rootfs). */
  sandbox: Omit<SandboxConfig, "id" | "stateDir" | "firstRootfs">;
  interactive: boolean;
  tty: boolean;
}

/** What `moat ps` shows of a foreground run. */
export interface ForegroundInfo {
  id: string;
  image: string;
  command: string[];
  created: string;
  isolation: string;
  status: "creating" | "running" | "exited";
  /** The moat process that owns it. */
  pid: number;
  socket?: string;
}

interface Phase {
  now: "preparing" | "running" | "cleaning";
  /** A signal that came before the container ran: the run stops after the step in progress. */
  aborted?: NodeJS.Signals;
  lastInterrupt?: number;
}

class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

const leaseIdOf = (id: string) => `bundle-${id}`;

function realDir(p: string): string {
  // Mounts are found again by their real path in the host's mount table.
  fs.mkdirSync(p, { recursive: true, mode: 0o700 });
  return fs.realpathSync(p);
}

function socketPathFor(root: string, id: string): string {
  const p = path.join(runsDir(root), `${id}.sock`);
  return Buffer.byteLength(p) <= SUN_PATH_MAX ? p : path.join("/tmp", `moat-run-${id.slice(0, 12)}.sock`);
}

/** Run one container in the foreground, from its bundle to its exit status; leave nothing. */
export async function runForeground(o: ForegroundOptions): Promise<number> {
  const root = realDir(o.store.root);
  const stateDir = path.join(realDir(path.join(root, "sandboxes")), o.id);
  const bundleDir = o.bundleDir
    ? path.join(realDir(path.dirname(o.bundleDir)), path.basename(o.bundleDir))
    : undefined;
  const leaseId = bundleDir ? leaseIdOf(o.id) : undefined;
  const leaseFile = leaseId ? o.store.leaseFile(leaseId) : undefined;
  const socketPath = socketPathFor(root, o.id);
  const info = (status: ForegroundInfo["status"], command: string[] = []) => ({
    image: o.image,
    command,
    isolation: o.backend.isolation,
    status,
    socket: socketPath,
  });
  const rec = RunRecorder.begin(root, o.id, {
    dirs: [...(bundleDir ? [bundleDir] : []), stateDir],
    mounts: [...(bundleDir ? [path.join(bundleDir, "rootfs")] : []), path.join(stateDir, "share", o.id)],
    files: [...(leaseFile ? [leaseFile] : []), socketPath],
    info: info("creating"),
  });
  testKillPoint("run-recorded");

  const phase: Phase = { now: "preparing" };
  let sandbox: Sandbox | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    const second =
      sig === "SIGINT" &&
      phase.lastInterrupt !== undefined &&
      Date.now() - phase.lastInterrupt < SECOND_INTERRUPT_MS;
    if (sig === "SIGINT") phase.lastInterrupt = Date.now();
    if (phase.now === "running" && sandbox) {
      if (second) {
        process.stderr.write("moat: second interrupt within 3 s: killing the container\n");
        sandbox.signal(o.id, "SIGKILL").catch(() => {});
      } else {
        sandbox.signal(o.id, parseSignal(sig)).catch(() => {});
        testKillPoint("signal-forwarded");
      }
      return;
    }
    if (second) {
      // Still starting (a vm boot takes a while) or cleaning up: leave at once. What this run
      // made is in its record, which the next moat command reaps.
      process.stderr.write(
        "moat: second interrupt within 3 s: leaving now; the next moat command cleans up\n",
      );
      process.exit(130);
    }
    phase.aborted ??= sig;
  };
  for (const s of FORWARDED) process.on(s, onSignal);
  const checkAbort = () => {
    if (phase.aborted) throw new Interrupted(phase.aborted);
  };

  const control = await listenControl(socketPath, {
    signal: async (sig) => {
      if (phase.now !== "running" || !sandbox)
        throw new MoatError("ESTATE", `run ${o.id} is not running yet`);
      await sandbox.signal(o.id, sig);
    },
  });

  // -t on a real terminal: the container's pty starts at our size and follows it; our own
  // terminal goes raw so keys (^C included) reach the container's line discipline.
  const term = o.tty && process.stdout.isTTY ? process.stdout : undefined;
  const rawStdin = Boolean(o.tty && o.interactive && process.stdin.isTTY);
  const onWinch = () => {
    if (term) sandbox?.resize(o.id, { width: term.columns, height: term.rows }).catch(() => {});
  };
  let status: ExitStatus | undefined;
  let bundle: OpenedBundle | undefined;
  let failure: unknown;
  try {
    bundle = await o.makeBundle(leaseId);
    testKillPoint("bundle-made");
    if (term && bundle.spec.process)
      bundle.spec.process.consoleSize = { height: term.rows, width: term.columns };
    const command = bundle.spec.process?.args ?? [];
    rec.update((r) => {
      r.info = info("creating", command);
      // --keep: the bundle is the user's once it is complete; a killed run leaves it be.
      if (o.keepBundle && bundleDir) {
        r.dirs = r.dirs.filter((d) => d !== bundleDir);
        r.mounts = r.mounts.filter((m) => m !== path.join(bundleDir, "rootfs"));
        r.files = r.files.filter((f) => f !== leaseFile);
      }
    });
    checkAbort();
    sandbox = await o.backend.createSandbox({
      ...o.sandbox,
      id: o.id,
      stateDir,
      firstRootfs: bundle.rootfs,
    });
    rec.noteHelpers(descendantsOf(process.pid));
    testKillPoint("sandbox-created");
    checkAbort();
    await sandbox.create({
      id: o.id,
      bundle: bundle.dir,
      spec: bundle.spec,
      rootfs: bundle.rootfs,
      stdio: {
        ...(o.interactive ? { stdin: process.stdin } : {}),
        stdout: process.stdout,
        stderr: process.stderr,
        ...(o.tty ? { terminal: true } : {}),
      },
    });
    rec.noteHelpers(descendantsOf(process.pid));
    testKillPoint("container-created");
    checkAbort();
    process.on("SIGWINCH", onWinch);
    if (rawStdin) process.stdin.setRawMode(true);
    await sandbox.start(o.id);
    phase.now = "running";
    rec.noteHelpers(descendantsOf(process.pid));
    rec.update((r) => {
      r.info = { ...info("running", command), started: new Date().toISOString() };
    });
    testKillPoint("container-started");
    // A signal that came while the container was being made: it gets it now.
    if (phase.aborted) onSignal(phase.aborted);
    const waitKill =
      process.env.MOAT_TEST_KILL_AT === "container-waiting"
        ? setTimeout(() => testKillPoint("container-waiting"), 300)
        : undefined;
    try {
      status = await sandbox.wait(o.id);
    } finally {
      clearTimeout(waitKill);
    }
    testKillPoint("container-exited");
    control.exited(status);
  } catch (e) {
    failure = e;
  } finally {
    phase.now = "cleaning";
    process.off("SIGWINCH", onWinch);
    if (rawStdin) process.stdin.setRawMode(false);
    if (o.interactive) process.stdin.destroy();
    rec.update((r) => {
      r.info = { ...r.info, status: "exited" };
    });
    testKillPoint("cleanup-started");
    const problems: string[] = [];
    try {
      await sandbox?.destroy();
    } catch (e) {
      problems.push(`the sandbox: ${(e as Error).message}`);
    }
    testKillPoint("sandbox-destroyed");
    if (bundle && bundleDir && !o.keepBundle) {
      try {
        await o.removeBundle(bundle.dir);
      } catch (e) {
        problems.push(`the bundle: ${(e as Error).message}`);
      }
    }
    testKillPoint("bundle-removed");
    await control.close();
    for (const s of FORWARDED) process.off(s, onSignal);
    if (problems.length === 0) {
      // What is left is only what a failed step did not make; undo it as the reaper would.
      const left = reapRunNow(rec);
      problems.push(...left);
    }
    if (problems.length > 0) {
      // The record stays: the next moat command tries again, once this process is gone.
      process.stderr.write(
        `moat: cleaning up run ${o.id} failed (${problems.join("; ")}): the next moat command retries\n`,
      );
    }
  }
  if (failure instanceof Interrupted) return 128 + SignalNumbers[failure.signal as Signal];
  if (failure !== undefined) throw describeFailure(failure, o.id);
  return status!.status;
}

/** Undo what is still recorded (the steps that failed half-way), then drop the record. */
function reapRunNow(rec: RunRecorder): string[] {
  const leftDirs = rec.record.dirs.filter((d) => fs.existsSync(d));
  const leftFiles = rec.record.files.filter((f) => fs.existsSync(f));
  if (leftDirs.length === 0 && leftFiles.length === 0) {
    rec.end();
    return [];
  }
  // The same undo as for a dead owner, by the owner itself: it knows it is done.
  return reapRun(rec.root, rec.record as RunRecord).failed;
}

/** A lost sandbox (its VM or kernel gone) as one clear line, not a trace. */
function describeFailure(e: unknown, id: string): unknown {
  const msg = (e as Error)?.message ?? String(e);
  if (/ttrpc connection lost|connection lost|peer closed/.test(msg)) {
    return new MoatError(
      "EIO",
      `the sandbox of run ${id.slice(0, 12)} went away before its container ended (${msg.replace(/^.*?: (ttrpc connection lost)/, "$1")}): its VM or kernel was killed or crashed`,
      { cause: e },
    );
  }
  return e;
}

interface Control {
  exited(status: ExitStatus): void;
  close(): Promise<void>;
}

/** The run's control socket: `moat kill`/`moat stop` send signals and wait for the end here. */
async function listenControl(
  socketPath: string,
  handlers: { signal(sig: Signal): Promise<void> },
): Promise<Control> {
  fs.rmSync(socketPath, { force: true });
  const waiters = new Set<net.Socket>();
  let final: ExitStatus | undefined;
  const server = net.createServer((conn) => {
    let buf = "";
    conn.setEncoding("utf8");
    conn.on("error", () => {});
    conn.on("close", () => waiters.delete(conn));
    conn.on("data", (d: string) => {
      buf += d;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void answer(conn, line);
      }
    });
  });
  const answer = async (conn: net.Socket, line: string) => {
    const reply = (o: unknown) => conn.writable && conn.write(`${JSON.stringify(o)}\n`);
    try {
      const req = JSON.parse(line) as { signal?: string; wait?: boolean };
      if (req.signal) {
        await handlers.signal(parseSignal(req.signal));
        reply({ ok: true });
      } else if (req.wait) {
        if (final) reply({ exited: final.status });
        else waiters.add(conn);
      } else reply({ error: "unknown request" });
    } catch (e) {
      reply({ error: (e as Error).message });
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // The socket must not keep a finished run alive.
  server.unref();
  fs.chmodSync(socketPath, 0o600);
  return {
    exited(status) {
      final = status;
      for (const w of waiters) w.write(`${JSON.stringify({ exited: status.status })}\n`);
    },
    async close() {
      for (const w of waiters) w.end();
      await new Promise<void>((r) => server.close(() => r()));
      fs.rmSync(socketPath, { force: true });
    },
  };
}

// ---- for moat ps, kill and stop ----

function infoOf(rec: RunRecord): ForegroundInfo {
  const i = rec.info as Partial<ForegroundInfo>;
  return {
    id: rec.id,
    image: String(i.image ?? ""),
    command: Array.isArray(i.command) ? i.command.map(String) : [],
    created: rec.created,
    isolation: String(i.isolation ?? ""),
    status: i.status === "running" || i.status === "exited" ? i.status : "creating",
    pid: rec.owner.pid,
    ...(typeof i.socket === "string" ? { socket: i.socket } : {}),
  };
}

/** The foreground runs whose owner is alive, newest first. */
export function listForeground(root: string): ForegroundInfo[] {
  return listRunRecords(root)
    .filter(ownerAlive)
    .map(infoOf)
    .sort((a, b) => b.created.localeCompare(a.created));
}

/** The live foreground run a person means: its full id or a unique start of it. */
export function findForeground(root: string, text: string): ForegroundInfo | undefined {
  if (!/^[0-9a-f]+$/.test(text)) return undefined;
  const matches = listForeground(root).filter((r) => r.id.startsWith(text));
  if (matches.length > 1) {
    throw new MoatError("EINVAL", `"${text}" is the start of ${matches.length} run ids: give more digits`);
  }
  return matches[0];
}

/** One request to a run's control socket; resolves with its reply (or undefined on timeout). */
function ask(
  run: ForegroundInfo,
  req: object,
  timeoutMs: number,
): Promise<Record<string, unknown> | undefined> {
  if (!run.socket) throw new MoatError("ESTATE", `run ${run.id.slice(0, 12)} takes no requests`);
  return new Promise((resolve, reject) => {
    const conn = net.connect(run.socket!);
    let buf = "";
    const timer = setTimeout(() => {
      conn.destroy();
      resolve(undefined);
    }, timeoutMs);
    conn.setEncoding("utf8");
    conn.on("connect", () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)));
      } catch (e) {
        reject(e);
      }
    });
    conn.on("error", (e) => {
      clearTimeout(timer);
      reject(
        new MoatError(
          "ESTATE",
          `run ${run.id.slice(0, 12)} does not answer (${e.message}): it may have just ended`,
        ),
      );
    });
    // The run closed its socket: it ended.
    conn.on("close", () => {
      clearTimeout(timer);
      resolve(buf ? undefined : { closed: true });
    });
  });
}

/** Send a signal to a foreground run's container (through its moat, which forwards it). */
export async function signalForeground(run: ForegroundInfo, signal: Signal): Promise<void> {
  const r = await ask(run, { signal }, 10_000);
  if (r?.error) throw new MoatError("ESTATE", `run ${run.id.slice(0, 12)}: ${String(r.error)}`);
}

/** Wait up to timeoutMs for the run's container to end: its exit status, or undefined. */
export async function waitForeground(run: ForegroundInfo, timeoutMs: number): Promise<number | undefined> {
  const r = await ask(run, { wait: true }, timeoutMs).catch(
    (): Record<string, unknown> => ({ closed: true }),
  );
  if (r && typeof r.exited === "number") return r.exited;
  return undefined;
}

/** docker stop for a foreground run: `first` (TERM), then KILL if it still runs after graceS. */
export async function stopForeground(
  run: ForegroundInfo,
  graceS: number,
  first: Signal = "SIGTERM",
): Promise<number | undefined> {
  await signalForeground(run, first);
  const status = await waitForeground(run, graceS * 1000);
  if (status !== undefined) return status;
  await signalForeground(run, "SIGKILL").catch(() => {});
  return waitForeground(run, 30_000);
}

/**
 * Undo what dead runs left under ROOT, and drop image-store leases whose owner is dead:
 * called by every moat entry point before its command. Never fails the command: a failure is
 * one line on stderr, the details under --debug.
 */
export async function reapLeftovers(store: ImageStore): Promise<void> {
  const debug = Boolean(process.env.MOAT_DEBUG);
  try {
    for (const r of reapDeadRuns(store.root)) {
      if (debug && r.done.length)
        process.stderr.write(`moat: reaped dead run ${r.id}: ${r.done.join("; ")}\n`);
      if (r.failed.length) {
        process.stderr.write(`moat: cannot clean up after dead run ${r.id}: ${r.failed.join("; ")}\n`);
      }
    }
    const dropped = await store.reapLeases();
    if (debug && dropped.length)
      process.stderr.write(`moat: dropped leases of dead processes: ${dropped.join(", ")}\n`);
  } catch (e) {
    process.stderr.write(`moat: cleaning up after dead runs failed: ${(e as Error).message}\n`);
    if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  }
}

/** reapLeftovers for an entry point that opens no store (runc's commands): the run records only. */
export function reapQuietly(root: string): void {
  try {
    for (const r of reapDeadRuns(root)) {
      if (r.failed.length)
        process.stderr.write(`moat: cannot clean up after dead run ${r.id}: ${r.failed.join("; ")}\n`);
    }
  } catch {
    // never the command's failure
  }
}

/** `moat kill` of a foreground run: just the signal with -s, else docker stop's TERM, grace, KILL. */
export async function killForeground(
  run: ForegroundInfo,
  signal: Signal | undefined,
  graceS: number,
): Promise<{ id: string; signal?: Signal; status?: number }> {
  if (signal) {
    await signalForeground(run, signal);
    return { id: run.id, signal };
  }
  const status = await stopForeground(run, graceS);
  return { id: run.id, ...(status !== undefined ? { status } : {}) };
}

const PS_STATUS = { creating: "created", running: "running", exited: "stopped" } as const;

/** A foreground run as one JSON line of `moat ps --json`, in the detached containers' fields. */
export function foregroundJson(f: ForegroundInfo): Record<string, unknown> {
  return {
    id: f.id,
    image: f.image,
    command: f.command,
    created: f.created,
    status: PS_STATUS[f.status],
    foreground: true,
    isolation: f.isolation,
    pid: f.pid,
  };
}

/** A foreground run as a row of `moat ps`'s table; `ago` is the table's own time format. */
export function foregroundRow(f: ForegroundInfo, ago: (iso: string) => string): string[] {
  let cmd = f.command.join(" ");
  if (cmd.length > 30) cmd = `${cmd.slice(0, 29)}…`;
  const status =
    f.status === "running"
      ? `Up ${ago(f.created)} (foreground)`
      : f.status === "creating"
        ? "Created (foreground)"
        : "Exiting (foreground)";
  return [f.id.slice(0, 12), "", f.image, `"${cmd}"`, `${ago(f.created)} ago`, status, f.isolation];
}
