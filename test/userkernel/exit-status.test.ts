// Exit statuses as docker and the vm give them, through the Sandbox interface with real
// traced processes: 127 for a program not found, 126 for one that cannot be run (with
// docker's line on stderr), 128+n for a death by signal n with the real signal's name, and
// signals from outside applied with Linux's default actions (and its protection of PID 1:
// the init ignores what it has no handler for, SIGKILL and SIGSTOP aside).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { Signal } from "../../src/sandbox/signals.js";
import type { Spec } from "../../src/spec/runtime.js";
import { UserkernelBackend, type UserkernelSandbox } from "../../src/userkernel/sandbox.js";
import { Collector } from "../helpers/streams.js";
import { C_DIR, workdir } from "./helpers.js";
import { type BusyboxBundle, busyboxBundle } from "./rootfs-run.js";

/** Is the host process alive (a zombie counts as gone)? */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, "latin1"));
  } catch {
    return false;
  }
}

describe("userkernel exit statuses", () => {
  let b: BusyboxBundle;
  let sandbox: UserkernelSandbox;
  let spec: Spec;
  let work: Awaited<ReturnType<typeof workdir>>;
  let n = 0;
  before(async () => {
    b = await busyboxBundle();
    work = await workdir();
    // Programs of our own in the image: a static one that faults, a dynamically linked one
    // (the image has no ld.so), a 32-bit ELF.
    mkdirSync(path.join(b.rootfs, "t"));
    copyFileSync(await work.compile("fault"), path.join(b.rootfs, "t/fault"));
    await promisify(execFile)("gcc", [
      "-O1",
      "-o",
      path.join(b.rootfs, "t/dynamic"),
      path.join(C_DIR, "hello.c"),
    ]);
    const c32 = readFileSync(path.join(b.rootfs, "t/fault"));
    c32[4] = 1; // ELFCLASS32
    writeFileSync(path.join(b.rootfs, "t/elf32"), c32, { mode: 0o755 });
    spec = JSON.parse(readFileSync(path.join(b.base, "bundle", "config.json"), "utf8")) as Spec;
    sandbox = await new UserkernelBackend().createSandbox({ id: "uk-exit", stateDir: b.base });
  });
  after(async () => {
    await sandbox?.destroy();
    await work?.remove();
    await b?.remove();
  });

  /** `args` as a new container's init; with `hold`, its stdin stays open (read waits). */
  async function start(args: string[], hold = false) {
    const id = `c${++n}`;
    const stdout = new Collector();
    const stderr = new Collector();
    await sandbox.create({
      id,
      bundle: path.join(b.base, "bundle"),
      spec: { ...spec, process: { ...spec.process!, args } },
      rootfs: b.rootfs,
      stdio: { stdout, stderr, ...(hold ? { stdin: new PassThrough() } : {}) },
    });
    await sandbox.start(id);
    // The host pid of the init's stub now (the program does not exec again in these tests).
    const pid = sandbox.hostPids(id)[0];
    return { id, pid, stdout, stderr, done: sandbox.wait(id) };
  }

  test("a command not found exits 127 with docker's message", async () => {
    const r = await start(["nosuch"]);
    const st = await r.done;
    assert.equal(st.status, 127);
    assert.equal(st.code, 127);
    assert.equal(r.stderr.text(), 'moat: exec: "nosuch": executable file not found in $PATH\n');
    const abs = await start(["/no/such"]);
    assert.equal((await abs.done).status, 127);
    assert.match(abs.stderr.text(), /exec: "\/no\/such": stat \/no\/such: no such file or directory/);
  });

  test("a file that cannot be run exits 126: not executable, a directory, a 32-bit ELF", async () => {
    const file = await start(["/etc/passwd"]);
    assert.equal((await file.done).status, 126);
    assert.equal(file.stderr.text(), 'moat: exec: "/etc/passwd": permission denied\n');
    const dir = await start(["/etc"]);
    assert.equal((await dir.done).status, 126);
    assert.equal(dir.stderr.text(), 'moat: exec: "/etc": is a directory\n');
    const elf32 = await start(["/t/elf32"]);
    assert.equal((await elf32.done).status, 126);
    assert.equal(elf32.stderr.text(), 'moat: exec: "/t/elf32": exec format error (not a 64-bit ELF file)\n');
  });

  test("a dynamic program whose ELF interpreter the image lacks exits 127, as runc's exec does", async () => {
    const dyn = await start(["/t/dynamic"]);
    assert.equal((await dyn.done).status, 127);
    assert.equal(
      dyn.stderr.text(),
      'moat: exec: "/t/dynamic": no such file or directory (its ELF interpreter /lib64/ld-linux-x86-64.so.2)\n',
    );
  });

  test("a fault of the program's own is death by SIGSEGV: 139", async () => {
    const r = await start(["/t/fault"]);
    const st = await r.done;
    assert.equal(st.signal, "SIGSEGV");
    assert.equal(st.status, 139);
    assert.equal(r.stdout.text(), "before\n");
  });

  for (const [sig, status] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
    ["SIGUSR1", 138],
  ] as Array<[Signal, number]>) {
    test(`${sig} from outside: the init ignores it as Linux's PID 1 does; an exec's sleep dies of it: ${status}`, async () => {
      const r = await start(["sleep", "100"]);
      assert.ok(r.pid && alive(r.pid));
      // PID 1 with no handler for it: ignored, as the vm's init and runc's are.
      await sandbox.signal(r.id, sig);
      const execId = `x${n}`;
      await sandbox.exec({
        containerId: r.id,
        execId,
        process: { ...spec.process!, args: ["sleep", "100"] },
        stdio: { stdout: new Collector(), stderr: new Collector() },
      });
      const stub = sandbox.hostPids(r.id, execId)[0]!;
      await sandbox.signal(r.id, sig, execId);
      const st = await sandbox.wait(r.id, execId);
      assert.equal(st.signal, sig);
      assert.equal(st.status, status);
      assert.equal(alive(stub), false, "the exec's stub is gone");
      assert.ok(alive(r.pid!), "the init is still running");
      await sandbox.signal(r.id, "SIGKILL");
      assert.equal((await r.done).status, 137, "SIGKILL from outside ends even PID 1");
    });
  }

  test("a signal sent while an exec's start is under way acts once the program is loaded", async () => {
    const r = await start(["sleep", "100"]);
    const execId = `x${n}`;
    const starting = sandbox.exec({
      containerId: r.id,
      execId,
      process: { ...spec.process!, args: ["sleep", "100"] },
      stdio: { stdout: new Collector(), stderr: new Collector() },
    });
    await sandbox.signal(r.id, "SIGTERM", execId);
    await starting;
    const st = await sandbox.wait(r.id, execId);
    assert.equal(st.signal, "SIGTERM");
    assert.equal(st.status, 143);
    await sandbox.signal(r.id, "SIGKILL");
    await r.done;
  });

  test("SIGWINCH, SIGCHLD, SIGURG and SIGCONT are ignored by default; KILL then reads 137", async () => {
    const r = await start(["sleep", "100"]);
    for (const s of ["SIGWINCH", "SIGCHLD", "SIGURG", "SIGCONT"] as Signal[]) await sandbox.signal(r.id, s);
    await sleep(300);
    assert.ok(alive(r.pid!), "still running after the ignored signals");
    const early = await Promise.race([r.done, sleep(10).then(() => "running")]);
    assert.equal(early, "running");
    await sandbox.signal(r.id, "SIGKILL");
    const st = await r.done;
    assert.equal(st.signal, "SIGKILL");
    assert.equal(st.status, 137);
  });

  test("SIGSTOP stops the process, SIGCONT resumes it, SIGTSTP (an orphaned group) does nothing, KILL ends it even stopped", async () => {
    const r = await start(["sleep", "100"]);
    for (const s of ["SIGSTOP", "SIGCONT", "SIGTSTP", "SIGCONT", "SIGSTOP"] as Signal[]) {
      await sandbox.signal(r.id, s);
      await sleep(100);
      assert.ok(alive(r.pid!), `alive after ${s}`);
    }
    const early = await Promise.race([r.done, sleep(10).then(() => "running")]);
    assert.equal(early, "running");
    await sandbox.signal(r.id, "SIGKILL");
    assert.equal((await r.done).status, 137);
  });

  test("a signal the program has a handler for runs it (sh's trap), and the handler's exit is the status", async () => {
    // busybox sh with a trap installs a handler for TERM (rt_sigaction), and waits in read.
    const r = await start(["sh", "-c", "trap 'echo caught; exit 3' TERM; read x"], true);
    await sleep(500);
    await sandbox.signal(r.id, "SIGTERM");
    const st = await r.done;
    assert.equal(st.status, 3);
    assert.equal(r.stdout.text(), "caught\n", "the handler ran");
    // Ignored by the program (SIG_IGN): nothing happens, as on Linux.
    const ign = await start(["sh", "-c", "trap '' HUP; read x"], true);
    await sleep(500);
    await sandbox.signal(ign.id, "SIGHUP");
    await sleep(200);
    assert.ok(alive(ign.pid!));
    await sandbox.signal(ign.id, "SIGKILL");
    assert.equal((await ign.done).status, 137);
  });
});
