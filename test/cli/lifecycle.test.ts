// moat's docker-like lifecycle end to end, as a person types it: run -d returns at once and
// the container keeps running, logs shows what it wrote, exec runs a second process, ps
// lists it, kill sends TERM and then KILL, rm removes everything the container made.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { sandboxDir } from "../../src/oci/state.js";
import { MAIN, cli as moatCli } from "../helpers/moat-cli.js";
import { processesWhere } from "../helpers/procs.js";
import { cleanupTempDirs, mountsUnder, tempDir } from "../helpers/tmp.js";

const cli = (root: string) => moatCli(root, 180000);

after(cleanupTempDirs);

interface PsEntry {
  id: string;
  name?: string;
  image: string;
  command: string[];
  status: string;
  exitStatus?: number;
  isolation: string;
  pid?: number;
}

/** `moat ps` rows: stdout is a pipe here, so one JSON object per line. */
/** `moat run -d --isolation userkernel --name NAME default CMD...`. */
function runDetached(moat: ReturnType<typeof cli>, name: string, cmd: string[]) {
  return moat(["run", "-d", "--isolation", "userkernel", "--name", name, "default", ...cmd]);
}

function ps(moat: ReturnType<typeof cli>, all = false): PsEntry[] {
  const r = moat(["ps", ...(all ? ["-a"] : [])]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as PsEntry);
}

async function eventually(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every path a container made under the root: state, bundle, log, name. */
function traces(root: string, id: string, name?: string): string[] {
  return [
    path.join(root, "containers", id),
    path.join(root, "bundles", id),
    path.join(root, "logs", `${id}.log`),
    path.join(root, "logs", `${id}.err`),
    ...(name ? [path.join(root, "names", name)] : []),
  ].filter((p) => fs.existsSync(p));
}

/** Live (not zombie) processes of a session: pid and command name. */
function liveInSession(sid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const d of fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (f[0] !== "Z" && Number(f[3]) === sid) out.push({ pid: Number(d), comm });
  }
  return out;
}

const ID = /^[0-9a-f]{32}\n$/;
// A loop of shell builtins (the userkernel has no fork yet), then a long sleep as the same process.
const LOOP =
  "i=0; while [ $i -lt 3 ]; do echo line $i; i=$((i+1)); done; echo to-stderr >&2; trap 'exit 143' TERM; while :; do sleep 1; done";

describe("moat run -d and friends, userkernel", () => {
  const root = tempDir();
  const moat = cli(root);

  test("run -d returns at once; logs, ps, kill (TERM ends it before the grace period), rm", async () => {
    const t0 = Date.now();
    const r = runDetached(moat, "loop", ["sh", "-c", LOOP]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, ID, "run -d prints the id alone");
    const id = r.stdout.trim();
    const runMs = Date.now() - t0;

    await eventually("the loop's output in the log", () =>
      moat(["logs", "loop"]).stderr.includes("to-stderr"),
    );
    // its stdout on our stdout, its stderr on our stderr
    const logs = moat(["logs", "loop"]);
    assert.equal(logs.stdout, "line 0\nline 1\nline 2\n");
    assert.equal(logs.stderr, "to-stderr\n");
    // by id prefix too, as docker takes it
    assert.equal(moat(["logs", id.slice(0, 8)]).stdout, "line 0\nline 1\nline 2\n");

    const listed = ps(moat);
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.id, id);
    assert.equal(listed[0]!.name, "loop");
    assert.equal(listed[0]!.image, "default");
    assert.equal(listed[0]!.status, "running");
    assert.equal(listed[0]!.isolation, "userkernel");
    assert.deepEqual(listed[0]!.command, ["sh", "-c", LOOP]);
    assert.ok(listed[0]!.pid && fs.existsSync(`/proc/${listed[0]!.pid}`), "ps shows the live monitor");

    // A running container is not removed without -f.
    const busy = moat(["rm", "loop"]);
    assert.equal(busy.status, 125);
    assert.match(busy.stderr, /container loop is running: stop it first with "moat kill loop"/);

    // logs -f follows until the container stops
    const follow = spawn(process.execPath, [MAIN, "--root", root, "logs", "-f", "loop"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let followed = "";
    follow.stdout.setEncoding("utf8").on("data", (d: string) => {
      followed += d;
    });
    const followEnded = new Promise<number | null>((res) => follow.on("close", (code) => res(code)));
    let followedErr = "";
    follow.stderr.setEncoding("utf8").on("data", (d: string) => {
      followedErr += d;
    });
    await eventually("logs -f to print the log", () => followedErr.includes("to-stderr"));

    // The shell's trap ends it on TERM (PID 1 without a handler would ignore it, as on
    // Linux): kill returns long before the 30 s grace period would send KILL.
    const k0 = Date.now();
    const k = moat(["kill", "--time", "30", "loop"]);
    assert.equal(k.status, 0, k.stderr);
    const killMs = Date.now() - k0;
    assert.ok(killMs < 15_000, `kill took ${killMs} ms: TERM should have ended the sleep`);
    assert.deepEqual(ps(moat), [], "ps without -a lists running containers only");
    assert.equal(await followEnded, 0);
    assert.equal(followed, "line 0\nline 1\nline 2\n");
    assert.equal(followedErr, "to-stderr\n");
    const stopped = ps(moat, true);
    assert.equal(stopped.length, 1);
    assert.equal(stopped[0]!.status, "stopped");
    assert.equal(typeof stopped[0]!.exitStatus, "number");
    assert.ok(stopped[0]!.exitStatus! > 128, `killed by a signal: ${stopped[0]!.exitStatus}`);
    assert.match(moat(["kill", "loop"]).stderr, /container loop is not running/);

    const rm = moat(["rm", "loop"]);
    assert.equal(rm.status, 0, rm.stderr);
    assert.deepEqual(traces(root, id, "loop"), []);
    assert.deepEqual(mountsUnder(root), []);
    assert.deepEqual(
      fs.readdirSync(path.join(root, "leases")),
      [],
      "the bundle's lease on the layers is gone",
    );
    assert.match(moat(["logs", "loop"]).stderr, /no container named or with id "loop"/);
    console.log(`userkernel: run -d ${runMs} ms, kill (TERM) ${killMs} ms`);
  });

  test("exec runs a second process: its output, stdin and exit status are ours", async () => {
    const r = runDetached(moat, "ex", ["sh", "-c", LOOP]);
    assert.equal(r.status, 0, r.stderr);
    const e = moat(["exec", "ex", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert.equal(e.status, 3, e.stderr);
    assert.equal(e.stdout, "out\n");
    assert.equal(e.stderr, "err\n");
    const env = moat(["exec", "-e", "GREETING=hi", "-w", "/etc", "ex", "sh", "-c", 'echo "$GREETING"; pwd']);
    assert.equal(env.stdout, "hi\n/etc\n", env.stderr);
    const cat = moat(["exec", "-i", "ex", "tr", "a-z", "A-Z"], { input: "piped in\n" });
    assert.equal(cat.stdout, "PIPED IN\n", cat.stderr);
    // the exec'd process neither wrote to the container's log nor ended the container
    assert.equal(moat(["logs", "ex"]).stdout, "line 0\nline 1\nline 2\n");
    assert.equal(ps(moat)[0]?.status, "running");
    // rm -f kills first, then removes it all
    const rm = moat(["rm", "-f", "ex"]);
    assert.equal(rm.status, 0, rm.stderr);
    assert.deepEqual(traces(root, r.stdout.trim(), "ex"), []);
    assert.deepEqual(mountsUnder(root), []);
    assert.match(moat(["exec", "ex", "true"]).stderr, /no container named or with id "ex"/);
  });

  test("names are unique; bad names, ids and options get clear errors and leave nothing", async () => {
    const first = runDetached(moat, "same", ["sh", "-c", LOOP]);
    assert.equal(first.status, 0, first.stderr);
    const id = first.stdout.trim();
    const clash = runDetached(moat, "same", ["true"]);
    assert.equal(clash.status, 125);
    assert.match(clash.stderr, new RegExp(`the name "same" is already used by container ${id.slice(0, 12)}`));
    assert.deepEqual(fs.readdirSync(path.join(root, "bundles")), [id], "the refused run made no bundle");
    assert.deepEqual(fs.readdirSync(path.join(root, "containers")), [id]);

    assert.match(
      moat(["run", "-d", "--name", "../x", "default", "true"]).stderr,
      /--name "..\/x" is not a valid name/,
    );
    assert.match(
      moat(["run", "--name", "n", "default", "true"]).stderr,
      /--name names a detached container: add -d/,
    );
    // -t with -d is the backend's to honour: the userkernel has no terminal device yet
    assert.match(
      moat(["run", "-d", "-t", "--isolation", "userkernel", "default", "sh"]).stderr,
      /the userkernel has no terminal device yet/,
    );
    assert.match(moat(["kill", "-s", "NOPE", "same"]).stderr, /unknown signal/);
    assert.match(moat(["kill", "--time", "soon", "same"]).stderr, /--time "soon" is not a number of seconds/);
    assert.match(
      moat(["exec", "same"]).stderr,
      /^moat exec: requires at least 2 arguments \(CONTAINER CMD...\); see moat exec --help$/m,
    );
    assert.match(moat(["logs", "nothere"]).stderr, /no container named or with id "nothere"/);

    // A program that is not in the image: the container ends at once with 127, its log
    // saying why in docker's words, as in the vm; rm frees its name.
    const bad = runDetached(moat, "bad", ["/bin/not-there"]);
    assert.equal(bad.status, 0, bad.stderr);
    const badEntry = () => ps(moat, true).find((c) => c.name === "bad");
    await eventually("the container without a program to stop", () => badEntry()?.status === "stopped");
    assert.equal(badEntry()!.exitStatus, 127);
    const badLog = moat(["logs", "bad"]);
    assert.match(
      badLog.stdout + badLog.stderr,
      /exec: "\/bin\/not-there": stat \/bin\/not-there: no such file/,
    );
    assert.equal(moat(["rm", "bad"]).status, 0);
    assert.deepEqual(fs.readdirSync(path.join(root, "bundles")), [id]);
    assert.deepEqual(fs.readdirSync(path.join(root, "names")), ["same"]);

    // the name is free again once its container is removed
    const removed = moat(["rm", "-f", "same"]);
    assert.equal(removed.status, 0, removed.stderr);
    const again = runDetached(moat, "same", ["sh", "-c", LOOP]);
    assert.equal(again.status, 0, again.stderr);
    const removedAgain = moat(["rm", "-f", "same"]);
    assert.equal(removedAgain.status, 0, removedAgain.stderr);
    assert.deepEqual(fs.readdirSync(path.join(root, "containers")), []);
    assert.deepEqual(mountsUnder(root), []);
  });
});

describe("moat run -d and friends, vm (one boot)", () => {
  const root = tempDir();
  const moat = cli(root);

  test("run -d, logs, exec, ps, kill -s TERM ignored, kill escalates to KILL, rm; no QEMU left", async () => {
    // The shell ignores TERM, so only the KILL after the grace period ends it.
    const script = 'trap "" TERM; echo ready; echo oops >&2; while :; do sleep 1; done';
    const t0 = Date.now();
    const r = moat([
      "run",
      "-d",
      "--isolation",
      "vm",
      "--memory",
      "768m",
      "--name",
      "web",
      "default",
      "sh",
      "-c",
      script,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, ID);
    const id = r.stdout.trim();
    const runMs = Date.now() - t0;
    // The container's monitor leads a session of its own; its QEMU runs in a session of its
    // own too (so a terminal's signals miss it), found by the sandbox dir on its command line.
    const monitor = ps(moat)[0]?.pid;
    assert.ok(monitor, "ps shows the container's monitor");
    const sbDir = sandboxDir(path.join(root, "containers"), id);
    const qemus = () =>
      processesWhere((argv, cmdline) => /qemu-system/.test(argv[0] ?? "") && cmdline.includes(sbDir));
    assert.equal(qemus().length, 1, "the container's VM runs after run -d returned");
    const qemuArgs = fs.readFileSync(`/proc/${qemus()[0]}/cmdline`, "latin1").split("\0");
    assert.equal(qemuArgs[qemuArgs.indexOf("-m") + 1], "768", "--memory sizes the detached container's VM");

    await eventually("the container's output in the log", () =>
      moat(["logs", "web"]).stderr.includes("oops"),
    );
    // stdout and stderr are kept apart and given back on our stdout and stderr
    const lines = () => {
      const l = moat(["logs", "web"]);
      return [l.stdout, l.stderr];
    };
    assert.deepEqual(lines(), ["ready\n", "oops\n"]);

    const listed = ps(moat);
    assert.equal(listed.length, 1);
    assert.deepEqual(
      {
        id: listed[0]!.id,
        name: listed[0]!.name,
        status: listed[0]!.status,
        isolation: listed[0]!.isolation,
      },
      { id, name: "web", status: "running", isolation: "vm" },
    );

    // exec: a second process with our stdio; its stdout, stderr and exit status are ours.
    const e0 = Date.now();
    const ex = moat(["exec", "web", "sh", "-c", "echo out; echo err >&2; cat /proc/version; exit 3"]);
    const execMs = Date.now() - e0;
    assert.equal(ex.status, 3, ex.stderr);
    assert.equal(ex.stderr, "err\n");
    assert.match(ex.stdout, /^out\nLinux version \d+\.\d+\.\d+-\d+-amd64 /);
    const envs = moat([
      "exec",
      "-e",
      "GREETING=hi",
      "-w",
      "/etc",
      "web",
      "sh",
      "-c",
      'echo "$GREETING"; pwd',
    ]);
    assert.equal(envs.stdout, "hi\n/etc\n", envs.stderr);
    const stdin = moat(["exec", "-i", id.slice(0, 6), "tr", "a-z", "A-Z"], { input: "piped in\n" });
    assert.equal(stdin.stdout, "PIPED IN\n", stdin.stderr);
    // the exec saw the container's processes: the init shell is there
    const procs = moat(["exec", "web", "ps"]);
    assert.match(procs.stdout, /trap "" TERM/);

    // -t: a terminal (the pty's master comes back over a console socket); -i feeds it our stdin
    const term = moat(["exec", "-t", "web", "sh", "-c", "tty; exit 5"]);
    assert.equal(term.status, 5, term.stderr);
    assert.match(term.stdout, /^\/dev\/pts\/\d+\r?\n$/);
    const shell = moat(["exec", "-it", "web", "sh"], { input: "echo $((6*7)); exit 4\n" });
    assert.equal(shell.status, 4, shell.stderr);
    assert.match(shell.stdout, /^42\r?$/m);

    // kill -s sends just that signal: the shell ignores TERM and keeps running.
    assert.equal(moat(["kill", "-s", "TERM", "web"]).status, 0);
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(ps(moat)[0]?.status, "running");

    // kill (docker stop): TERM, then KILL once the grace period is over.
    const k0 = Date.now();
    const k = moat(["kill", "--time", "2", "web"]);
    const killMs = Date.now() - k0;
    assert.equal(k.status, 0, k.stderr);
    assert.ok(killMs >= 2000, `kill returned after ${killMs} ms, before the grace period`);
    assert.deepEqual(JSON.parse(k.stdout), { id, status: 137 });
    const stopped = ps(moat, true);
    assert.equal(stopped[0]?.status, "stopped");
    assert.equal(stopped[0]?.exitStatus, 137);
    await eventually("QEMU to exit with its container", () => qemus().length === 0, 15_000);
    assert.match(moat(["exec", "web", "true"]).stderr, /container not running/);

    assert.deepEqual(lines(), ["ready\n", "oops\n"], "the log outlives the container");
    const rm = moat(["rm", "web"]);
    assert.equal(rm.status, 0, rm.stderr);
    assert.deepEqual(traces(root, id, "web"), []);
    assert.deepEqual(mountsUnder(root), []);
    assert.deepEqual(qemus(), []);
    assert.deepEqual(liveInSession(monitor), [], "nothing of the container's is left running");
    console.log(`vm: run -d ${runMs} ms, exec ${execMs} ms, kill with a 2 s grace ${killMs} ms`);
  });
});
