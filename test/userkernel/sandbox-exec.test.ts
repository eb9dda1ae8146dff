// exec into a userkernel container, through the Sandbox interface as the front doors call it:
// execs run in the container's kernel next to its init (same files, same pid namespace,
// same hostname), each with its own stdio and exit status; ids are checked; killing an exec
// leaves the init running; the init's end, delete and destroy leave no process behind.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { createBundle, removeBundle } from "../../src/image/bundle.js";
import { DEFAULT_IMAGE, ensureDefaultImage } from "../../src/image/default-image.js";
import { ImageStore } from "../../src/image/store.js";
import type { ExitStatus } from "../../src/sandbox/types.js";
import { isMoatError } from "../../src/spec/index.js";
import type { Process, Spec } from "../../src/spec/runtime.js";
import { UserkernelBackend, type UserkernelSandbox } from "../../src/userkernel/sandbox.js";
import { childrenOf } from "../helpers/procs.js";
import { Collector } from "../helpers/streams.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolve with what `p` gives within `ms`, or "pending". */
function settledWithin<T>(p: Promise<T>, ms: number): Promise<T | "pending"> {
  return Promise.race([p, sleep(ms).then(() => "pending" as const)]);
}

// A process that never ends would hang the run; each test takes well under a second.
describe("userkernel exec", { timeout: 60_000 }, () => {
  let store: ImageStore;
  let bundleDir: string;
  let spec: Spec;
  let rootfs: string;
  let sandbox: UserkernelSandbox;
  let n = 0;
  // The long-lived container most tests exec into: its init writes /etc/moat-init, then
  // waits for a line on stdin, reads /etc/moat-exec (written by an exec) and prints it.
  const initStdin = new PassThrough();
  const initOut = new Collector();
  const INIT =
    'echo from-init > /etc/moat-init; read go; read line < /etc/moat-exec; echo "init read: $line"; read go; exit 7';

  before(async () => {
    store = await ImageStore.open(tempDir());
    await ensureDefaultImage(store);
    bundleDir = path.join(tempDir(), "bundle");
    const b = await createBundle(store, DEFAULT_IMAGE, bundleDir);
    spec = { ...b.spec, hostname: "exec-test" };
    rootfs = b.rootfs;
    sandbox = await new UserkernelBackend().createSandbox({ id: "uk-exec", stateDir: tempDir() });
    await sandbox.create({
      id: "main",
      bundle: bundleDir,
      spec: { ...spec, process: { ...spec.process!, args: ["sh", "-c", INIT] } },
      rootfs,
      stdio: { stdin: initStdin, stdout: initOut, stderr: initOut },
    });
    await sandbox.start("main");
  });
  after(async () => {
    await sandbox?.destroy();
    if (bundleDir) await removeBundle(bundleDir);
    cleanupTempDirs();
  });

  function processOf(args: string[], extra: Partial<Process> = {}): Process {
    return { ...spec.process!, args, ...extra };
  }

  /** Start an exec; `done` is its exit status. */
  async function startExec(
    args: string[],
    opts: { container?: string; stdin?: PassThrough; process?: Partial<Process>; id?: string } = {},
  ) {
    const containerId = opts.container ?? "main";
    const execId = opts.id ?? `e${++n}`;
    const stdout = new Collector();
    const stderr = new Collector();
    const { pid } = await sandbox.exec({
      containerId,
      execId,
      process: processOf(args, opts.process),
      stdio: { stdout, stderr, ...(opts.stdin ? { stdin: opts.stdin } : {}) },
    });
    // The host pid of its stub now (for the tests that look for stray processes).
    const stub = sandbox.hostPids(containerId, execId)[0];
    return { execId, pid, stub, stdout, stderr, done: sandbox.wait(containerId, execId) };
  }

  /** Run an exec to its end. */
  async function execRun(args: string[], opts: Parameters<typeof startExec>[1] = {}) {
    const e = await startExec(args, opts);
    const status = await e.done;
    return { status, stdout: e.stdout.text(), stderr: e.stderr.text(), pid: e.pid };
  }

  async function initRunning(): Promise<boolean> {
    return (await settledWithin(sandbox.wait("main"), 50)) === "pending";
  }

  test("an exec's output and exit code are its own; the init keeps running", async () => {
    const r = await execRun(["sh", "-c", "echo out; echo err >&2; exit 5"]);
    // No host pid stands for a userkernel process (execve gives it a new stub): the front
    // doors report the host process that runs the kernel.
    assert.equal(r.pid, undefined, "an exec has no host pid of its own");
    assert.equal(r.status.code, 5);
    assert.equal(r.status.status, 5);
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
    assert.ok(await initRunning(), "the init still runs");
  });

  test("a file the init wrote is read by an exec, and the reverse", async () => {
    let seen = "";
    for (let i = 0; i < 50 && seen === ""; i++) {
      const r = await execRun(["cat", "/etc/moat-init"]);
      if (r.status.code === 0) seen = r.stdout;
      else await sleep(100);
    }
    assert.equal(seen, "from-init\n");
    const w = await execRun(["sh", "-c", "echo from-exec > /etc/moat-exec"]);
    assert.equal(w.status.code, 0, w.stderr);
    initStdin.write("go\n");
    for (let i = 0; i < 50 && !initOut.text().includes("init read:"); i++) await sleep(100);
    assert.equal(initOut.text(), "init read: from-exec\n");
    // The overlay is the kernel's: neither write reached the host's rootfs.
    assert.ok(!existsSync(path.join(rootfs, "etc/moat-exec")));
    assert.ok(!existsSync(path.join(rootfs, "etc/moat-init")));
  });

  test("an exec shares the init's pid namespace and hostname", async () => {
    const cmdline = await execRun(["cat", "/proc/1/cmdline"]);
    assert.equal(cmdline.stdout, `sh\0-c\0${INIT}\0`);
    const ids = await execRun(["sh", "-c", 'echo "$$ $PPID"']);
    const [pid, ppid] = ids.stdout.trim().split(" ").map(Number);
    assert.ok(pid! > 1, `an exec's pid is not the init's (${ids.stdout})`);
    assert.equal(ppid, 0, "its parent is outside the container, as with runc exec");
    const ls = await execRun(["ls", "/proc"]);
    const pids = ls.stdout
      .split(/\s+/)
      .filter((s) => /^\d+$/.test(s))
      .map(Number);
    assert.ok(pids.includes(1), `/proc lists the init: ${pids}`);
    assert.ok(pids.length >= 2, `/proc lists the init and the exec itself: ${pids}`);
    assert.ok(!pids.includes(pid!), "an exec that ended is gone from /proc");
    const host = await execRun(["hostname"]);
    assert.equal(host.stdout, "exec-test\n");
  });

  test("an exec gets its process's user, groups, env, cwd, umask and rlimits", async () => {
    const id = await execRun(["id"], { process: { user: { uid: 1000, gid: 1001, additionalGids: [10] } } });
    assert.match(id.stdout, /^uid=1000\b.* gid=1001\b.* groups=.*\b10\b/);
    const sh = await execRun(["sh", "-c", 'echo "$FOO"; pwd; umask; ulimit -n'], {
      process: {
        env: ["PATH=/bin:/usr/bin", "FOO=bar"],
        cwd: "/tmp",
        user: { uid: 0, gid: 0, umask: 0o027 },
        rlimits: [{ type: "RLIMIT_NOFILE", soft: 64, hard: 128 }],
      },
    });
    assert.equal(sh.status.code, 0, sh.stderr);
    assert.equal(sh.stdout, "bar\n/tmp\n0027\n64\n");
  });

  test("two execs at once, each with its own stdin; without stdin a program reads EOF", async () => {
    const in1 = new PassThrough();
    const in2 = new PassThrough();
    const a = await startExec(["cat"], { stdin: in1 });
    const b = await startExec(["cat"], { stdin: in2 });
    in2.write("second\n");
    in1.write("first\n");
    await sleep(100);
    assert.equal(await settledWithin(a.done, 10), "pending", "cat waits for more input");
    await sandbox.closeStdin("main", b.execId);
    assert.equal((await b.done).code, 0);
    assert.equal(await settledWithin(a.done, 100), "pending", "closing one exec's stdin leaves the other");
    await sandbox.closeStdin("main", a.execId);
    assert.equal((await a.done).code, 0);
    assert.equal(a.stdout.text(), "first\n");
    assert.equal(b.stdout.text(), "second\n");
    const none = await execRun(["cat"]);
    assert.equal(none.status.code, 0);
    assert.equal(none.stdout, "");
  });

  test("stats counts the running execs", async () => {
    const alone = await sandbox.stats("main");
    assert.equal(alone.pids, 1);
    const a = await startExec(["cat"], { stdin: new PassThrough() });
    const b = await startExec(["cat"], { stdin: new PassThrough() });
    const three = await sandbox.stats("main");
    assert.equal(three.pids, 3);
    assert.ok(three.memoryBytes > alone.memoryBytes, `${three.memoryBytes} > ${alone.memoryBytes}`);
    await sandbox.signal("main", "SIGKILL", a.execId);
    await sandbox.signal("main", "SIGKILL", b.execId);
    await Promise.all([a.done, b.done]);
    assert.equal((await sandbox.stats("main")).pids, 1);
  });

  test("SIGKILL to an exec ends it with 137; the init keeps running", async () => {
    const e = await startExec(["cat"], { stdin: new PassThrough() });
    assert.equal(await settledWithin(e.done, 100), "pending");
    await sandbox.signal("main", "SIGKILL", e.execId);
    const status = await e.done;
    assert.equal(status.signal, "SIGKILL");
    assert.equal(status.status, 137);
    assert.ok(await initRunning(), "the init still runs");
    await assert.rejects(sandbox.signal("main", "SIGKILL", e.execId), (err) => isMoatError(err, "ESTATE"));
    assert.equal((await execRun(["true"])).status.code, 0, "the container still takes execs");
  });

  test("exec ids are unique per container; unknown ids and terminals are refused", async () => {
    const running = await startExec(["cat"], { stdin: new PassThrough(), id: "dup" });
    await assert.rejects(
      startExec(["true"], { id: "dup" }),
      (e) => isMoatError(e, "EEXIST") && /dup/.test(e.message),
    );
    await sandbox.signal("main", "SIGKILL", "dup");
    await running.done;
    await assert.rejects(startExec(["true"], { id: "dup" }), (e) => isMoatError(e, "EEXIST"));
    const unknown = (e: unknown) => isMoatError(e, "ENOENT") && /nope/.test((e as Error).message);
    await assert.rejects(sandbox.signal("main", "SIGTERM", "nope"), unknown);
    await assert.rejects(sandbox.wait("main", "nope"), unknown);
    await assert.rejects(sandbox.closeStdin("main", "nope"), unknown);
    await assert.rejects(sandbox.resize("main", { width: 80, height: 24 }, "dup"), (e) =>
      isMoatError(e, "ENOTSUP"),
    );
    await assert.rejects(startExec(["sh"], { process: { terminal: true } }), (e) =>
      isMoatError(e, "ENOTSUP"),
    );
    await assert.rejects(startExec(["true"], { container: "nosuch" }), (e) => isMoatError(e, "ENOENT"));
    // A program that is not in the image is an exec that exits 127, as in the vm.
    assert.equal((await execRun(["/no/such/program"], { id: "missing" })).status.status, 127);
  });

  test("an exec into a created container runs before its init, which is still pid 1", async () => {
    const out = new Collector();
    await sandbox.create({
      id: "early",
      bundle: bundleDir,
      spec: { ...spec, process: { ...spec.process!, args: ["sh", "-c", 'echo "init $$"; cat /tmp/note'] } },
      rootfs,
      stdio: { stdout: out, stderr: out },
    });
    const w = await execRun(["sh", "-c", 'echo "exec $$" > /tmp/note'], { container: "early" });
    assert.equal(w.status.code, 0, w.stderr);
    await sandbox.start("early");
    assert.equal((await sandbox.wait("early")).code, 0);
    assert.match(out.text(), /^init 1\nexec [2-9]\d*\n$/);
    await sandbox.delete("early");
  });

  test("the init's end kills the execs; a stopped container takes no exec and deletes cleanly", async () => {
    const e = await startExec(["cat"], { stdin: new PassThrough() });
    assert.equal(await settledWithin(e.done, 100), "pending");
    initStdin.write("done\n");
    const initStatus: ExitStatus = await sandbox.wait("main");
    assert.equal(initStatus.code, 7);
    assert.equal((await e.done).status, 137, "the init's end killed the exec, as in a pid namespace");
    await assert.rejects(startExec(["true"]), (err) => isMoatError(err, "ESTATE"));
    await sandbox.delete("main");
    assert.ok(e.stub, "the exec ran in a stub");
    assert.ok(!childrenOf(process.pid).includes(e.stub), "the exec's stub is reaped");
  });

  test("destroy kills running execs and leaves no process behind", async () => {
    const before = new Set(childrenOf(process.pid));
    const sb = await new UserkernelBackend().createSandbox({ id: "uk-exec-destroy", stateDir: tempDir() });
    await sb.create({
      id: "d",
      bundle: bundleDir,
      spec: { ...spec, process: { ...spec.process!, args: ["cat"] } },
      rootfs,
      stdio: { stdin: new PassThrough() },
    });
    await sb.start("d");
    await Promise.all(
      ["x1", "x2"].map((execId) =>
        sb.exec({
          containerId: "d",
          execId,
          process: processOf(["cat"]),
          stdio: { stdin: new PassThrough() },
        }),
      ),
    );
    const stubs = [sb.hostPids("d")[0], sb.hostPids("d", "x1")[0], sb.hostPids("d", "x2")[0]];
    const added = childrenOf(process.pid).filter((p) => !before.has(p));
    for (const p of stubs) assert.ok(p && added.includes(p), `stub ${p} runs as our child`);
    assert.ok(added.length >= 4, `three stubs and the gofer run (${added})`);
    await sb.destroy();
    const statuses = await Promise.all(
      ["x1", "x2"].map((x) => settledWithin(sb.wait("d", x), 10).catch((e) => e)),
    );
    for (const s of statuses) assert.ok(isMoatError(s, "ENOENT"), "destroy forgot the container");
    const left = childrenOf(process.pid).filter((p) => added.includes(p));
    assert.deepEqual(left, [], "every stub and the gofer are gone and reaped");
  });
});
