// moat as a runc-compatible runtime, driven the way podman and conmon drive runc: separate
// invocations for create, start, state, kill and delete, the container's stdio being the
// stdio the create invocation was given. Userkernel isolation (cheap); vm in one test.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Spec } from "../../src/spec/runtime.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";
import {
  baseBundle,
  bundleFor,
  createTo,
  fifoStdin,
  killAll,
  leftovers,
  MAIN,
  moat,
  mountsUnder,
  state,
  waitFor,
} from "./helpers.js";

let base: { rootfs: string; spec: Spec };
const roots: string[] = [];

function newRoot(): string {
  const r = path.join(tempDir("moat-oci-root-"), "state");
  roots.push(r);
  return r;
}

before(async () => {
  process.env.MOAT_ISOLATION = "userkernel";
  base = await baseBundle();
});

after(() => {
  // Whatever a failed test left running, it must not outlive the run.
  for (const r of roots) killAll(leftovers(r));
  cleanupTempDirs();
});

describe("moat OCI runtime CLI", () => {
  test("create -> created -> start -> output on the caller's stdio -> stopped -> delete", async () => {
    const root = newRoot();
    const bundle = bundleFor(base, ["echo", "hello from the container"]);
    const out = path.join(tempDir(), "stdout");
    const pidFile = path.join(tempDir(), "pid");
    const c = createTo(root, ["create", "--bundle", bundle, "--pid-file", pidFile, "c1"], out);
    assert.equal(c.stderr, "");
    assert.equal(c.status, 0);
    const pid = Number(fs.readFileSync(pidFile, "utf8"));
    assert.ok(fs.existsSync(`/proc/${pid}`), "the pid in --pid-file is alive while created");
    const s = state(root, "c1");
    assert.equal(s.status, "created");
    assert.equal(s.pid, pid);
    assert.equal(s.bundle, bundle);
    assert.equal(fs.readFileSync(out, "utf8"), "", "nothing runs before start");
    const list = JSON.parse(moat(root, ["list", "--format", "json"]).stdout) as Array<{ id: string }>;
    assert.deepEqual(
      list.map((x) => x.id),
      ["c1"],
    );

    const st = moat(root, ["start", "c1"]);
    assert.equal(st.stderr, "");
    assert.equal(st.status, 0);
    await waitFor(() => state(root, "c1").status === "stopped", 60_000, "stopped");
    assert.equal(fs.readFileSync(out, "utf8"), "hello from the container\n");
    assert.deepEqual(leftovers(root, [pid]), []);

    const d = moat(root, ["delete", "c1"]);
    assert.equal(d.stderr, "");
    assert.equal(d.status, 0);
    assert.deepEqual(fs.readdirSync(root), []);
    assert.match(moat(root, ["state", "c1"]).stderr, /container c1 does not exist/);
  });

  test("run --bundle: exit status is ours; kill KILL of a cat waiting on stdin gives 137", async () => {
    const root = newRoot();
    const r = moat(root, [
      "run",
      "--bundle",
      bundleFor(base, ["sh", "-c", "echo out; echo err >&2; exit 7"]),
      "r1",
    ]);
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
    assert.equal(r.status, 7);
    assert.deepEqual(fs.readdirSync(root), [], "run deletes the container when it ends");

    const child = spawn(
      process.execPath,
      [MAIN, "--root", root, "run", "-b", bundleFor(base, ["cat"]), "cat1"],
      {
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.stdin.write("line one\n");
    await waitFor(() => out === "line one\n", 60_000, "cat to echo its stdin");
    assert.equal(state(root, "cat1").status, "running");
    const k = moat(root, ["kill", "cat1", "KILL"]);
    assert.equal(k.stderr, "");
    assert.equal(k.status, 0);
    assert.equal(await exited, 137);
    child.stdin.destroy();
    assert.deepEqual(fs.readdirSync(root), []);
  });

  test("kill SIGKILL (by number) of a created-then-started cat: state says stopped", async () => {
    const root = newRoot();
    const out = path.join(tempDir(), "stdout");
    // The create invocation's stdin is a pipe the test holds: cat waits on it.
    const stdin = fifoStdin();
    const o = fs.openSync(out, "a");
    const create = spawn(
      process.execPath,
      [MAIN, "--root", root, "create", "-b", bundleFor(base, ["cat"]), "k1"],
      {
        stdio: [stdin.fd, o, o],
      },
    );
    fs.closeSync(o);
    assert.equal(await new Promise((r) => create.on("exit", r)), 0);
    const pid = state(root, "k1").pid;
    assert.equal(moat(root, ["start", "k1"]).status, 0);
    stdin.write("through the monitor\n");
    await waitFor(() => fs.readFileSync(out, "utf8") === "through the monitor\n", 60_000, "cat output");
    assert.equal(moat(root, ["kill", "k1", "9"]).status, 0);
    await waitFor(() => state(root, "k1").status === "stopped", 30_000, "stopped");
    assert.deepEqual(leftovers(root, [pid]), []);
    stdin.close();
    assert.equal(moat(root, ["delete", "k1"]).status, 0);
  });

  test("wrong-state operations are refused with runc's wording", async () => {
    const root = newRoot();
    const bundle = bundleFor(base, ["true"]);
    const out = path.join(tempDir(), "o");
    assert.match(moat(root, ["start", "nope"]).stderr, /container nope does not exist/);
    assert.match(moat(root, ["kill", "nope"]).stderr, /container nope does not exist/);
    assert.equal(moat(root, ["delete", "nope"]).status, 1);
    assert.equal(moat(root, ["delete", "--force", "nope"]).status, 0, "delete --force of nothing succeeds");
    assert.match(moat(root, ["create", "--bundle", bundle, "../x"]).stderr, /invalid container id/);
    assert.equal(createTo(root, ["create", "--bundle", bundle, "w1"], out).status, 0);
    const again = createTo(root, ["create", "--bundle", bundle, "w1"], out);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /container with id exists: w1/);
    // runc's rule: a console socket only with a terminal, and a terminal only with a socket.
    const sock = moat(root, [
      "create",
      "--console-socket",
      path.join(tempDir(), "x.sock"),
      "--bundle",
      bundle,
      "w2",
    ]);
    assert.match(sock.stderr, /cannot use a console socket when process.terminal is false/);
    const tty = bundleFor(base, ["true"]);
    const ttyCfg = JSON.parse(fs.readFileSync(path.join(tty, "config.json"), "utf8")) as Spec;
    ttyCfg.process!.terminal = true;
    fs.writeFileSync(path.join(tty, "config.json"), JSON.stringify(ttyCfg));
    assert.match(moat(root, ["create", "--bundle", tty, "w3"]).stderr, /no console socket was given/);
    assert.equal(moat(root, ["start", "w1"]).status, 0);
    await waitFor(() => state(root, "w1").status === "stopped", 60_000, "stopped");
    const restart = moat(root, ["start", "w1"]);
    assert.equal(restart.status, 1);
    assert.match(restart.stderr, /cannot start a container that has stopped/);
    assert.match(moat(root, ["kill", "w1", "KILL"]).stderr, /container not running/);
    assert.match(moat(root, ["kill", "w1", "NOSUCH"]).stderr, /unknown signal/);
    assert.equal(moat(root, ["delete", "w1"]).status, 0);
    assert.deepEqual(fs.readdirSync(root), []);
  });

  test("--log --log-format json puts the error last in the log, as shims read it", () => {
    const root = newRoot();
    const log = path.join(tempDir(), "log.json");
    const r = moat(root, ["--log", log, "--log-format", "json", "start", "ghost"]);
    assert.equal(r.status, 1);
    const last = JSON.parse(fs.readFileSync(log, "utf8").trim().split("\n").at(-1)!) as {
      level: string;
      msg: string;
    };
    assert.equal(last.level, "error");
    assert.match(last.msg, /container ghost does not exist/);
  });

  test("SIGKILL of the monitor or of create at any point: delete --force leaves nothing", async () => {
    const root = newRoot();
    // The monitor killed while the container runs.
    const stdin = fifoStdin();
    const o = fs.openSync(path.join(tempDir(), "o"), "a");
    const create = spawn(
      process.execPath,
      [MAIN, "--root", root, "create", "-b", bundleFor(base, ["cat"]), "m1"],
      {
        stdio: [stdin.fd, o, o],
      },
    );
    fs.closeSync(o);
    assert.equal(await new Promise((r) => create.on("exit", r)), 0);
    const monitor = state(root, "m1").pid;
    assert.equal(moat(root, ["start", "m1"]).status, 0);
    assert.equal(state(root, "m1").status, "running");
    assert.ok(leftovers(root, [monitor]).length >= 2, "the monitor and the container's processes run");
    process.kill(monitor, "SIGKILL");
    await waitFor(() => state(root, "m1").status === "stopped", 10_000, "stopped after the monitor died");
    assert.equal(moat(root, ["delete", "--force", "m1"]).status, 0);
    assert.deepEqual(leftovers(root, [monitor]), []);
    stdin.close();

    // create itself killed at several points of its work.
    for (const [i, delay] of [20, 150, 400, 900, 2000].entries()) {
      const id = `x${i}`;
      const cli = spawn(
        process.execPath,
        [MAIN, "--root", root, "create", "-b", bundleFor(base, ["cat"]), id],
        {
          stdio: ["pipe", "ignore", "ignore"],
        },
      );
      const gone = new Promise((r) => cli.on("exit", r));
      await new Promise((r) => setTimeout(r, delay));
      cli.kill("SIGKILL");
      await gone;
      const d = moat(root, ["delete", "--force", id]);
      assert.equal(d.stderr, "", `delete --force after create was killed at ${delay} ms`);
      assert.equal(d.status, 0);
      assert.deepEqual(leftovers(root), [], `no process left after killing create at ${delay} ms`);
      cli.stdin!.destroy();
    }
    assert.deepEqual(fs.readdirSync(root), []);
    assert.deepEqual(mountsUnder(root), []);
  });

  test("hooks run in order, on the host, with the state on stdin", async () => {
    const root = newRoot();
    const record = path.join(tempDir(), "hooks.log");
    const hook = (name: string) => ({
      path: "/bin/sh",
      args: ["sh", "-c", `printf '%s ' ${name} >> ${record}; cat >> ${record}; echo >> ${record}`],
    });
    const names = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];
    const hooks = Object.fromEntries(names.map((n) => [n, [hook(n)]]));
    const bundle = bundleFor(base, ["true"], { hooks });
    const out = path.join(tempDir(), "o");
    assert.equal(createTo(root, ["create", "-b", bundle, "h1"], out).status, 0);
    assert.equal(moat(root, ["start", "h1"]).status, 0);
    await waitFor(() => state(root, "h1").status === "stopped", 60_000, "stopped");
    assert.equal(moat(root, ["delete", "h1"]).status, 0);
    const lines = fs.readFileSync(record, "utf8").trim().split("\n");
    assert.deepEqual(
      lines.map((l) => l.split(" ")[0]),
      names,
    );
    const states = lines.map(
      (l) => JSON.parse(l.slice(l.indexOf(" ") + 1)) as { id: string; status: string; bundle: string },
    );
    assert.deepEqual(
      states.map((s) => s.status),
      ["creating", "creating", "creating", "created", "running", "stopped"],
    );
    for (const s of states) {
      assert.equal(s.id, "h1");
      assert.equal(s.bundle, bundle);
    }

    // A failing hook fails create and leaves nothing behind.
    const bad = bundleFor(base, ["true"], { hooks: { createRuntime: [{ path: "/bin/false" }] } });
    const r = createTo(root, ["create", "-b", bad, "h2"], path.join(tempDir(), "o2"));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /createRuntime hook \/bin\/false exited 1/);
    assert.deepEqual(fs.readdirSync(root), []);
    assert.deepEqual(leftovers(root), []);
  });

  test("spec, features, ps, --version", () => {
    const root = newRoot();
    const dir = tempDir();
    const s = moat(root, ["spec", "--bundle", dir]);
    assert.equal(s.status, 0);
    const spec = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as Spec;
    assert.deepEqual(spec.process?.args, ["sh"]);
    assert.match(moat(root, ["spec", "--bundle", dir]).stderr, /exists/);
    const f = JSON.parse(moat(root, ["features"]).stdout) as { ociVersionMax: string; hooks: string[] };
    assert.equal(f.ociVersionMax, "1.1.0");
    assert.ok(f.hooks.includes("poststop"));
    const v = moat(root, ["--version"]);
    assert.match(v.stdout, /^moat version .*\nspec: 1\.1\.0\n$/);
    assert.match(moat(root, ["ps", "nope"]).stderr, /does not exist/);
  });

  test("vm isolation through the annotation: create, start, output, an OOM kill recorded; a killed monitor takes its qemu along", async () => {
    const root = newRoot();
    const out = path.join(tempDir(), "stdout");
    const bundleAnn = { "run.moat.isolation": "vm" };
    // A 128 MiB guest whose container then fills its memory: the monitor records the OOM kill.
    const bundle = bundleFor(base, ["sh", "-c", "echo in a vm; head -c 400m /dev/zero | tail"], {
      annotations: { ...bundleAnn, "run.moat.memory": "128" },
    });
    const saved = process.env.MOAT_ISOLATION;
    delete process.env.MOAT_ISOLATION;
    try {
      const c = createTo(root, ["create", "-b", bundle, "vm1"], out);
      assert.equal(c.stderr, "");
      assert.equal(c.status, 0);
      const pid = state(root, "vm1").pid;
      assert.ok(leftovers(root, [pid]).length >= 2, "the monitor and its qemu exist after create");
      assert.equal(moat(root, ["start", "vm1"]).status, 0);
      await waitFor(() => state(root, "vm1").status === "stopped", 120_000, "stopped");
      assert.equal(fs.readFileSync(out, "utf8"), "in a vm\n");
      const rec = JSON.parse(fs.readFileSync(path.join(root, "vm1", "state.json"), "utf8"));
      assert.equal(rec.exitStatus, 137);
      assert.equal(rec.oomKilled, true);
      assert.equal(moat(root, ["delete", "vm1"]).status, 0);
      assert.deepEqual(leftovers(root, [pid]), []);

      // The monitor SIGKILLed while its VM waits in created: delete --force leaves no qemu.
      const c2 = createTo(
        root,
        ["create", "-b", bundleFor(base, ["cat"], { annotations: bundleAnn }), "vm2"],
        out,
      );
      assert.equal(c2.status, 0, c2.stderr);
      const pid2 = state(root, "vm2").pid;
      const qemu = leftovers(root, [pid2]).filter((p) => p !== pid2);
      assert.ok(qemu.length >= 1, "qemu runs beside the monitor");
      process.kill(pid2, "SIGKILL");
      assert.equal(moat(root, ["delete", "--force", "vm2"]).status, 0);
      assert.deepEqual(leftovers(root, [pid2]), []);
      assert.deepEqual(fs.readdirSync(root), []);
      assert.deepEqual(mountsUnder(root), []);
    } finally {
      process.env.MOAT_ISOLATION = saved;
    }
  });
});
