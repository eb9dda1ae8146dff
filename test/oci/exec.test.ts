// runc's exec contract, the console socket, kill --all and pause/resume, driven through
// moat's runc CLI as conmon drives runc: the exec'd process writes to the caller's own
// descriptors (handed to the monitor with SCM_RIGHTS), a detached exec leaves a waiter whose
// pid goes to --pid-file and whose exit status is the process's (reaped here as a child
// subreaper, like conmon), and a terminal's pty master arrives on a console socket.
// One userkernel container and one vm container (one boot) serve every assertion.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Spec } from "../../src/spec/runtime.js";
import { prctl, waitpidAsync } from "../../src/sys/process.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";
import { consoleReceiver } from "./console.js";
import {
  baseBundle,
  bundleFor,
  createTo,
  killAll,
  leftovers,
  MAIN,
  moat,
  state,
  waitFor,
} from "./helpers.js";

const PR_SET_CHILD_SUBREAPER = 36;
let base: { rootfs: string; spec: Spec };
const roots: string[] = [];

function newRoot(): string {
  const r = path.join(tempDir("moat-oci-exec-"), "state");
  roots.push(r);
  return r;
}

before(async () => {
  process.env.MOAT_ISOLATION = "userkernel";
  // Detached execs leave a waiter that is reparented to the nearest subreaper: us, as conmon.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  base = await baseBundle();
});

after(() => {
  for (const r of roots) killAll(leftovers(r));
  cleanupTempDirs();
});

/** `moat exec -d --pid-file`: returns the waiter's pid and where its stdout goes. */
function execDetached(root: string, id: string, cmd: string[]): { pid: number; out: string } {
  const out = path.join(tempDir(), "exec.out");
  const pidFile = path.join(tempDir(), "exec.pid");
  const r = createTo(root, ["exec", "--detach", "--pid-file", pidFile, id, ...cmd], out);
  assert.equal(r.stderr, "");
  assert.equal(r.status, 0);
  return { pid: Number(fs.readFileSync(pidFile, "utf8")), out };
}

/** The waiter's exit status, as a subreaper learns it. */
async function reap(pid: number): Promise<number> {
  const st = await waitpidAsync(pid, 0);
  if (st.kind === "exited") return st.code;
  if (st.kind === "signaled") return 128 + st.signal;
  throw new Error(`waiter ${pid}: unexpected wait status ${st.kind}`);
}

/**
 * kill --all reaches the processes the container's processes forked, not only the init and
 * the execs: an exec forks a shell, both trap SIGWINCH (whose default action is to ignore it,
 * so the init is not disturbed), the child writes its mark and ends, the exec sees the mark
 * and exits 5. Without --all the child never hears of it and the exec loops on.
 */
async function killAllReachesForkedChildren(root: string, id: string): Promise<void> {
  const child = `trap "echo child > /tmp/kc; exit 0" WINCH; touch /tmp/kready; while :; do sleep 0.1; done`;
  const script = `rm -f /tmp/kc /tmp/kp /tmp/kready; trap "echo parent > /tmp/kp" WINCH; sh -c '${child}' & while [ ! -e /tmp/kc ]; do sleep 0.1; done; exit 5`;
  const { pid } = execDetached(root, id, ["sh", "-c", script]);
  await waitFor(
    () => moat(root, ["exec", id, "test", "-e", "/tmp/kready"]).status === 0,
    60_000,
    "the child's trap",
  );
  const k = moat(root, ["kill", "--all", id, "WINCH"]);
  assert.equal(k.stderr, "");
  assert.equal(k.status, 0);
  assert.equal(await reap(pid), 5, "the exec saw its child's mark");
  assert.equal(moat(root, ["exec", id, "cat", "/tmp/kc", "/tmp/kp"]).stdout, "child\nparent\n");
  assert.equal(state(root, id).status, "running", "the init ignored it");
}

/** A running container whose init sleeps; the create's own output goes to a file. */
function running(
  root: string,
  id: string,
  bundle: string,
  globals: string[] = [],
  flags: string[] = [],
): number {
  const c = createTo(
    root,
    [...globals, "create", ...flags, "--bundle", bundle, id],
    path.join(tempDir(), "init.out"),
  );
  assert.equal(c.stderr, "");
  assert.equal(c.status, 0);
  assert.equal(moat(root, ["start", id]).status, 0);
  assert.equal(state(root, id).status, "running");
  return state(root, id).pid;
}

describe("exec into a userkernel container", () => {
  const root = newRoot();
  let monitor = 0;

  before(() => {
    monitor = running(root, "u1", bundleFor(base, ["sh", "-c", "sleep 600"]));
  });

  test("output on the caller's stdout and stderr, exit status, stdin, env and cwd", () => {
    const r = moat(root, ["exec", "u1", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
    assert.equal(r.status, 3);
    const cat = moat(root, ["exec", "u1", "cat"], "through the caller's stdin\n");
    assert.equal(cat.stdout, "through the caller's stdin\n");
    assert.equal(cat.status, 0);
    const env = moat(root, [
      "exec",
      "--env",
      "GREETING=hi",
      "--cwd",
      "/tmp",
      "u1",
      "sh",
      "-c",
      'echo "$GREETING $PWD"',
    ]);
    assert.equal(env.stdout, "hi /tmp\n", env.stderr);
  });

  test("--detach --pid-file: the waiter exits with the process's status after its output", async () => {
    const { pid, out } = execDetached(root, "u1", ["sh", "-c", "echo detached; exit 4"]);
    assert.equal(await reap(pid), 4);
    assert.equal(fs.readFileSync(out, "utf8"), "detached\n");
  });

  test("--process FILE: a runtime-spec process, as conmon writes it", () => {
    const file = path.join(tempDir(), "process.json");
    fs.writeFileSync(
      file,
      JSON.stringify({
        args: ["sh", "-c", "echo $ONLY; exit 6"],
        env: ["ONLY=from-file"],
        cwd: "/",
        user: { uid: 0, gid: 0 },
      }),
    );
    const r = moat(root, ["exec", "--process", file, "u1"]);
    assert.equal(r.stdout, "from-file\n", r.stderr);
    assert.equal(r.status, 6);
  });

  test("pause answers which isolation cannot and why; the container keeps running", () => {
    const p = moat(root, ["pause", "u1"]);
    assert.equal(p.status, 1);
    assert.match(p.stderr, /pause is not supported by the userkernel isolation: .*use the vm isolation/);
    assert.equal(state(root, "u1").status, "running");
    assert.match(moat(root, ["resume", "u1"]).stderr, /container not paused/);
  });

  test("kill --all reaches the processes an exec forked", () => killAllReachesForkedChildren(root, "u1"));

  test("kill --all ends the init and every exec; exec then says the container is not running", async () => {
    const { pid } = execDetached(root, "u1", ["sleep", "600"]);
    const k = moat(root, ["kill", "--all", "u1", "KILL"]);
    assert.equal(k.stderr, "");
    assert.equal(k.status, 0);
    assert.equal(await reap(pid), 137);
    await waitFor(() => state(root, "u1").status === "stopped", 30_000, "stopped");
    const r = moat(root, ["exec", "u1", "true"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /container not running/);
    assert.equal(moat(root, ["delete", "u1"]).status, 0);
    assert.deepEqual(leftovers(root, [monitor]), []);
  });
});

describe("vm container: console socket, exec -t, pause/resume, kill --all (one boot)", () => {
  const root = newRoot();
  const init = consoleReceiver();
  let monitor = 0;

  before(() => {
    const bundle = bundleFor(base, ["sh", "-c", "tty; echo ready; exec sleep 900"]);
    const cfg = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as Spec;
    cfg.process!.terminal = true;
    fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(cfg));
    monitor = running(root, "v1", bundle, ["--isolation", "vm"], ["--console-socket", init.path]);
  });

  after(() => init.close());

  test("create --console-socket: the init's terminal is a pty whose master we were sent", async () => {
    assert.match(await init.name, /^\/dev\/pts\/\d+$/);
    await waitFor(() => init.output().includes("ready"), 60_000, "the init's output on the pty");
    assert.match(init.output(), /^\/dev\/pts\/\d+\r\nready\r\n$/);
  });

  test("exec: output, exit status, and a detached exec's waiter", async () => {
    const r = moat(root, ["exec", "v1", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
    assert.equal(r.status, 3);
    const { pid, out } = execDetached(root, "v1", ["sh", "-c", "echo detached; exit 4"]);
    assert.equal(await reap(pid), 4);
    assert.equal(fs.readFileSync(out, "utf8"), "detached\n");
  });

  test("exec --tty --console-socket: tty names a pty, keys typed on the master reach the process", async () => {
    const con = consoleReceiver();
    try {
      const r = moat(root, ["exec", "--tty", "--console-socket", con.path, "v1", "tty"]);
      assert.equal(r.status, 0, r.stderr);
      await con.closed;
      assert.match(con.output(), /^\/dev\/pts\/\d+\r\n$/);
    } finally {
      con.close();
    }
    // Typed input: the process reads a line from its terminal (the guest's pty echoes it).
    const con2 = consoleReceiver();
    try {
      const child = spawn(
        process.execPath,
        [
          MAIN,
          "--root",
          root,
          "exec",
          "-t",
          "--console-socket",
          con2.path,
          "v1",
          "sh",
          "-c",
          "read line; echo got $line; exit 7",
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
      await con2.name;
      await new Promise((r) => setTimeout(r, 500));
      con2.write("hello\r");
      assert.equal(await exited, 7);
      await con2.closed;
      assert.match(con2.output(), /hello\r\ngot hello\r\n/);
    } finally {
      con2.close();
    }
  });

  test("kill --all reaches the processes an exec forked", () => killAllReachesForkedChildren(root, "v1"));

  test("pause freezes every process (state paused, no output, no exec); resume thaws it", async () => {
    const { pid, out } = execDetached(root, "v1", ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]);
    const lines = () => fs.readFileSync(out, "utf8").split("\n").length;
    await waitFor(() => lines() > 3, 60_000, "ticks");
    const p = moat(root, ["pause", "v1"]);
    assert.equal(p.stderr, "");
    assert.equal(p.status, 0);
    assert.equal(state(root, "v1").status, "paused");
    const frozen = lines();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(lines(), frozen, "no output while paused");
    assert.match(moat(root, ["exec", "v1", "true"]).stderr, /paused/);
    assert.match(moat(root, ["pause", "v1"]).stderr, /already paused/);
    assert.equal(moat(root, ["resume", "v1"]).status, 0);
    assert.equal(state(root, "v1").status, "running");
    await waitFor(() => lines() > frozen + 2, 60_000, "ticks after resume");

    // kill --all: the loop's waiter reports the KILL, the container stops, nothing is left.
    assert.equal(moat(root, ["kill", "--all", "v1", "KILL"]).status, 0);
    assert.equal(await reap(pid), 137);
    await waitFor(() => state(root, "v1").status === "stopped", 60_000, "stopped");
    await init.closed;
    assert.equal(moat(root, ["delete", "v1"]).status, 0);
    assert.deepEqual(leftovers(root, [monitor]), []);
  });
});
