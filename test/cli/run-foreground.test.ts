// A foreground `moat run` owns its container as docker's client does: SIGINT, SIGTERM and
// SIGHUP reach the container, a second SIGINT within 3 s kills it, moat's exit status is the
// container's, no stack trace ever reaches the user, and `moat ps` / `moat kill` see and reach
// it. Real CLI as a child process, real sandboxes in both isolations; nothing is left behind.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, test } from "node:test";
import { descendantsOf } from "../../src/sys/pids.js";
import {
  leftovers,
  moatSync,
  NOTHING,
  type Running,
  STACK_FRAME,
  startMoat,
  until,
  whenRunning,
} from "../helpers/foreground.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

const VM = ["--isolation", "vm", "--memory", "512m", "--cpus", "1", "--network", "none"];
const UK = ["--isolation", "userkernel"];
const BOOT_MS = 240_000;

async function ended(r: Running) {
  const x = await r.done;
  assert.doesNotMatch(x.stderr, STACK_FRAME, `a stack trace reached the user:\n${x.stderr}`);
  return x;
}

describe("a foreground run in the userkernel", () => {
  const root = tempDir();

  test("SIGINT, SIGTERM and SIGHUP reach the container; sleep as PID 1 ignores them", async () => {
    // The container's init is PID 1 of its kernel's pid namespace, shielded from signals it
    // has no handler for as on Linux (and in the vm): a shell that traps them shows they
    // arrive, and its exit status is moat's.
    const status = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      const name = sig.slice(3);
      const r = startMoat(root, [
        "run",
        ...UK,
        "default",
        "sh",
        "-c",
        `trap "echo got ${name}; exit ${status[sig]}" ${name}; sleep 100 & wait`,
      ]);
      await whenRunning(root, r, 60_000);
      // the shell has set its trap once it runs its first command
      await new Promise((res) => setTimeout(res, 1000));
      r.child.kill(sig);
      const x = await ended(r);
      assert.equal(x.signal, null, `${sig}: moat itself died of ${x.signal}`);
      assert.equal(x.code, status[sig], `${sig}: ${x.stderr}`);
      assert.equal(x.stdout, `got ${name}\n`);
      assert.doesNotMatch(x.stderr, /second interrupt/);
    }
    // sleep has no handler: the first SIGINT does nothing, the second within 3 s kills it.
    const twice = startMoat(root, ["run", ...UK, "default", "sleep", "100"]);
    await whenRunning(root, twice, 60_000);
    twice.child.kill("SIGINT");
    await new Promise((res) => setTimeout(res, 700));
    assert.equal(twice.child.exitCode, null, "one SIGINT already ended it");
    twice.child.kill("SIGINT");
    const x2 = await ended(twice);
    assert.equal(x2.code, 137, x2.stderr);
    assert.match(x2.stderr, /^moat: second interrupt within 3 s: killing the container\n$/);
    assert.deepEqual(leftovers(root), NOTHING);
  });

  test("moat ps lists a running foreground run, and moat kill ends it", async () => {
    const r = startMoat(root, ["run", ...UK, "default", "sleep", "100"]);
    const id = await whenRunning(root, r, 60_000);
    const ps = moatSync(root, ["--json", "ps"]);
    assert.equal(ps.status, 0, ps.stderr);
    const rows = ps.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const row = rows.find((x) => x.id === id);
    assert.ok(row, `moat ps does not list ${id}: ${ps.stdout}`);
    assert.equal(row.image, "default");
    assert.deepEqual(row.command, ["sleep", "100"]);
    assert.equal(row.status, "running");
    assert.equal(row.foreground, true);
    assert.equal(row.isolation, "userkernel");
    assert.equal(row.pid, r.child.pid);
    const quiet = moatSync(root, ["ps", "-q"]);
    assert.match(quiet.stdout, new RegExp(id));
    // By the short id, as docker shows it.
    // TERM is ignored by PID 1, so moat kill's grace runs out and KILL ends it.
    const k = moatSync(root, ["kill", "--time", "1", id.slice(0, 12)]);
    assert.equal(k.status, 0, k.stderr);
    const x = await ended(r);
    assert.equal(x.code, 137, x.stderr);
    assert.deepEqual(JSON.parse(k.stdout), { id, status: 137 });
    assert.equal(moatSync(root, ["--json", "ps"]).stdout, "");
    assert.deepEqual(leftovers(root), NOTHING);
  });
});

describe("a foreground run in the vm", () => {
  const root = tempDir();

  // Two VMs at a time: more than that on a loaded 2-core TCG host outwaits the agent's start.
  test("SIGINT and SIGTERM reach the container (two VMs at once)", { timeout: 600_000 }, async () => {
    // The container's init is PID 1 of its pid namespace in the guest, which the kernel shields
    // from signals it has no handler for (as with `docker run busybox sleep 100`): a shell that
    // traps them shows they arrive, and its exit status is moat's.
    const trapping = (sig: string, code: number) => [
      "sh",
      "-c",
      `trap "echo got ${sig}; exit ${code}" ${sig}; sleep 100 & wait`,
    ];
    const int = startMoat(root, ["run", ...VM, "default", ...trapping("INT", 130)]);
    const term = startMoat(root, ["run", ...VM, "default", ...trapping("TERM", 143)]);
    await Promise.all([int, term].map((r) => whenRunning(root, r, BOOT_MS)));
    // the shell has set its trap once it runs its first command
    await new Promise((r) => setTimeout(r, 1000));
    int.child.kill("SIGINT");
    term.child.kill("SIGTERM");
    const xi = await ended(int);
    assert.equal(xi.code, 130, xi.stderr);
    assert.equal(xi.stdout, "got INT\n");
    const xt = await ended(term);
    assert.equal(xt.code, 143, xt.stderr);
    assert.equal(xt.stdout, "got TERM\n");
    assert.deepEqual(leftovers(root), NOTHING);
  });

  test("a second SIGINT kills; moat ps lists a run and moat kill ends it (two VMs)", {
    timeout: 600_000,
  }, async () => {
    const twice = startMoat(root, ["run", ...VM, "default", "sleep", "100"]);
    const killed = startMoat(root, ["run", ...VM, "default", "sleep", "100"]);
    const [, killedId] = await Promise.all([twice, killed].map((r) => whenRunning(root, r, BOOT_MS)));
    // sleep as PID 1 ignores the first SIGINT; the second, within 3 s, kills it.
    twice.child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(twice.child.exitCode, null, "one SIGINT already ended it");
    twice.child.kill("SIGINT");
    const x2 = await ended(twice);
    assert.equal(x2.code, 137, x2.stderr);
    assert.match(x2.stderr, /^moat: second interrupt within 3 s: killing the container\n$/);

    const ps = moatSync(root, ["--json", "ps"]);
    const row = ps.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .find((x) => x.id === killedId);
    assert.ok(row, ps.stdout);
    assert.equal(row.isolation, "vm");
    assert.equal(row.status, "running");
    assert.deepEqual(row.command, ["sleep", "100"]);
    // TERM is ignored by PID 1, so moat kill's grace runs out and KILL ends it.
    const k = moatSync(root, ["kill", "--time", "1", killedId!.slice(0, 12)]);
    assert.equal(k.status, 0, k.stderr);
    const xk = await ended(killed);
    assert.equal(xk.code, 137, xk.stderr);
    assert.deepEqual(JSON.parse(k.stdout), { id: killedId, status: 137 });
    assert.deepEqual(leftovers(root), NOTHING);
  });

  test("a VM that dies under a run is one clear error, not a stack trace, and leaves nothing", {
    timeout: 600_000,
  }, async () => {
    const r = startMoat(root, ["run", ...VM, "default", "sleep", "100"]);
    await whenRunning(root, r, BOOT_MS);
    const qemu = descendantsOf(r.child.pid!).filter((d) =>
      readFileSync(`/proc/${d.pid}/cmdline`, "latin1").includes(root),
    );
    assert.equal(qemu.length, 1);
    process.kill(qemu[0]!.pid, "SIGKILL");
    const x = await ended(r);
    assert.notEqual(x.code, 0);
    assert.equal(x.signal, null);
    // One error: what happened first, then the guest console's and QEMU's last words (indented).
    const lines = x.stderr.trim().split("\n");
    assert.match(
      lines[0]!,
      /^moat: sandbox .*: the VM exited unexpectedly \(QEMU killed by SIGKILL\)/,
      x.stderr,
    );
    assert.equal(lines.filter((l) => l.startsWith("moat:")).length, 1, x.stderr);
    assert.deepEqual(leftovers(root), NOTHING);
  });

  test("SIGINT while the VM boots stops the run once the boot is over: 130, nothing left", {
    timeout: 600_000,
  }, async () => {
    const r = startMoat(root, ["run", ...VM, "default", "sleep", "100"]);
    // QEMU runs, so the container cannot yet: the guest is still booting. (The sandbox's QEMU,
    // whose command line names its state dir under ROOT: not the `qemu-system-x86_64 --version`
    // that picking the backend runs before the run has any signal handler.)
    await until(
      "QEMU to start",
      () =>
        descendantsOf(r.child.pid!).some((d) => {
          try {
            return readFileSync(`/proc/${d.pid}/cmdline`, "latin1").includes(root);
          } catch {
            return false;
          }
        }),
      BOOT_MS,
    );
    r.child.kill("SIGINT");
    const x = await ended(r);
    assert.equal(x.code, 130, x.stderr);
    assert.equal(x.stderr, "");
    assert.deepEqual(leftovers(root), NOTHING);
  });
});
