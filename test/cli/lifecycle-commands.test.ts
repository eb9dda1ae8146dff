// moat's docker-like container commands beyond run -d/exec/kill/ps/logs/rm, on the real CLI
// and real sandboxes: stop, start, restart, wait, inspect, logs' two streams, ps --format and
// --filter, stats, top, port, pause/unpause. Each on the userkernel (a container there starts
// in about a second); the vm assertions share one container (started twice: start is one of them).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { after, describe, test } from "node:test";
import tar from "tar-stream";
import { MAIN, type Moat, cli as moatCli } from "../helpers/moat-cli.js";
import { cleanupTempDirs, mountsUnder, tempDir } from "../helpers/tmp.js";

const cli = (root: string) => moatCli(root, 240000);

after(cleanupTempDirs);

async function eventually(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function ok(r: ReturnType<Moat>): string {
  assert.equal(r.status, 0, `${r.stderr}${r.stdout}`);
  return r.stdout;
}

function inspect(moat: Moat, name: string): Record<string, any> {
  const list = JSON.parse(ok(moat(["inspect", name]))) as Record<string, any>[];
  assert.equal(list.length, 1);
  return list[0]!;
}

/** Add annotations to a container's kept bundle (what `moat run --stop-signal` etc. write). */
function annotate(root: string, id: string, extra: Record<string, string>): void {
  const file = path.join(root, "bundles", id, "config.json");
  const spec = JSON.parse(fs.readFileSync(file, "utf8"));
  spec.annotations = { ...spec.annotations, ...extra };
  fs.writeFileSync(file, JSON.stringify(spec));
}

const UK = ["run", "-d", "--isolation", "userkernel"];

/** Runs until TERM, which its trap turns into exit 143 (PID 1 without a handler would ignore it, as on Linux). */
const ST_CMD = "echo run; trap 'exit 143' TERM; while :; do sleep 1; done";

describe("moat stop, wait, start, restart, inspect, logs, ps --format/--filter, userkernel", () => {
  const root = tempDir();
  const moat = cli(root);

  test("logs: stdout and stderr apart, --tail, -t refused", async () => {
    const id = ok(
      moat([
        ...UK,
        "--name",
        "lg",
        "default",
        "sh",
        "-c",
        "echo out1; echo err1 >&2; echo out2; echo out3; exec sleep 1000",
      ]),
    ).trim();
    await eventually("the output", () => moat(["logs", "lg"]).stdout.includes("out3"));
    const l = moat(["logs", "lg"]);
    assert.equal(l.stdout, "out1\nout2\nout3\n");
    assert.equal(l.stderr, "err1\n");
    const t = moat(["logs", "--tail", "2", "lg"]);
    assert.equal(t.stdout, "out2\nout3\n");
    assert.equal(t.stderr, "err1\n");
    assert.equal(moat(["logs", "--tail", "0", "lg"]).stdout, "");
    assert.match(moat(["logs", "--tail", "x", "lg"]).stderr, /--tail "x" is not a number of lines/);
    assert.match(moat(["logs", "-t", "lg"]).stderr, /without times; drop -t/);
    assert.ok(fs.existsSync(path.join(root, "logs", `${id}.err`)));
    ok(moat(["rm", "-f", "lg"]));
    assert.equal(fs.existsSync(path.join(root, "logs", `${id}.err`)), false, "rm removes both logs");
  });

  test("stop, wait, start (again from its bundle, logs appended), start -a, restart, inspect", async () => {
    // The script execs: State.Pid stays the live host process that runs the container's kernel
    // while the program changes (the userkernel gives every execve a new stub).
    const id = ok(moat([...UK, "--name", "st", "default", "sh", "-c", ST_CMD])).trim();
    await eventually("its first output", () => moat(["logs", "st"]).stdout === "run\n");
    const first = inspect(moat, "st");
    assert.equal(first.Id, id);
    assert.equal(first.Name, "/st");
    assert.equal(first.Path, "sh");
    assert.deepEqual(first.Args, ["-c", ST_CMD]);
    assert.deepEqual(first.State.Status, "running");
    assert.equal(first.State.Running, true);
    assert.equal(first.State.OOMKilled, false);
    assert.ok(
      first.State.Pid > 0 && fs.existsSync(`/proc/${first.State.Pid}`),
      "State.Pid is a live process",
    );
    assert.equal(first.Config.Image, "default");
    assert.deepEqual(first.Config.Cmd, ["sh", "-c", ST_CMD]);
    assert.equal(first.Config.WorkingDir, "/");
    assert.ok(first.Config.Env.some((e: string) => e.startsWith("PATH=")));
    assert.equal(first.HostConfig.Isolation, "userkernel");

    // wait blocks until the container stops, then prints its status
    const waiter = spawn(process.execPath, [MAIN, "--root", root, "wait", "st"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let waited = "";
    waiter.stdout.setEncoding("utf8").on("data", (d: string) => {
      waited += d;
    });
    const waiterDone = new Promise<number | null>((res) => waiter.on("close", res));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(waited, "", "wait has not returned while the container runs");

    const s0 = Date.now();
    const stop = JSON.parse(ok(moat(["stop", "-t", "5", "st"])));
    const stopMs = Date.now() - s0;
    assert.equal(stop.id, id);
    assert.ok(stop.status > 128, `stopped by a signal: ${stop.status}`);
    assert.ok(stopMs < 5000, `TERM ends it (its trap) before the 5 s grace: ${stopMs} ms`);
    assert.equal(await waiterDone, 0);
    assert.equal(waited, `${stop.status}\n`, "wait prints the exit status");
    const stopped = inspect(moat, "st");
    assert.equal(stopped.State.Status, "exited");
    assert.equal(stopped.State.Running, false);
    assert.equal(stopped.State.ExitCode, stop.status);
    assert.equal(stopped.State.Pid, 0);
    assert.ok(Date.parse(stopped.State.FinishedAt) >= Date.parse(stopped.State.StartedAt));
    // stop of a stopped container is no error (docker's habit); wait returns at once
    ok(moat(["stop", "st"]));
    assert.equal(moat(["wait", "st"]).stdout, `${stop.status}\n`);

    // start: the same container again: same id and name, a new run, its output appended
    const bundle = fs.statSync(path.join(root, "bundles", id, "config.json")).ino;
    ok(moat(["start", "st"]));
    await eventually("the second run's output", () => moat(["logs", "st"]).stdout === "run\nrun\n");
    const again = inspect(moat, "st");
    assert.equal(again.Id, id);
    assert.equal(again.State.Status, "running");
    assert.equal(again.Created, first.Created, "Created is the container's, not the run's");
    assert.ok(Date.parse(again.State.StartedAt) > Date.parse(first.State.StartedAt));
    assert.equal(fs.statSync(path.join(root, "bundles", id, "config.json")).ino, bundle, "the kept bundle");
    // start of a running container changes nothing
    ok(moat(["start", "st"]));
    assert.equal(inspect(moat, "st").State.StartedAt, again.State.StartedAt);

    // restart: stop, then start
    ok(moat(["restart", "-t", "5", "st"]));
    await eventually("the third run's output", () => moat(["logs", "st"]).stdout === "run\nrun\nrun\n");
    assert.equal(inspect(moat, "st").State.Status, "running");
    ok(moat(["rm", "-f", "st"]));

    // start -a: attached to the new run's output, its exit status ours
    ok(moat([...UK, "--name", "att", "default", "sh", "-c", "echo o; echo e >&2; exit 3"]));
    assert.equal(moat(["wait", "att"]).stdout, "3\n");
    const att = moat(["start", "-a", "att"]);
    assert.equal(att.status, 3, att.stderr);
    assert.equal(att.stdout, "o\n", "only this run's output");
    assert.equal(att.stderr, "e\n");
    assert.equal(moat(["logs", "att"]).stdout, "o\no\n");
    ok(moat(["rm", "att"]));

    // errors
    assert.match(
      moat(["stop"]).stderr,
      /moat stop: requires at least 1 argument \(CONTAINER\.\.\.\); see moat stop --help/,
    );
    assert.match(moat(["stop", "-s", "NOPE", "x"]).stderr, /unknown signal/);
    assert.match(moat(["stop", "-t", "soon", "x"]).stderr, /-t "soon" is not a number of seconds/);
    assert.match(moat(["start", "nothere"]).stderr, /no container named or with id "nothere"/);
    assert.match(
      moat(["wait"]).stderr,
      /moat wait: requires at least 1 argument \(CONTAINER\.\.\.\); see moat wait --help/,
    );
    const missing = moat(["inspect", "nothere"]);
    assert.equal(missing.status, 125);
    assert.deepEqual(JSON.parse(missing.stdout), []);
    assert.match(missing.stderr, /no container named or with id "nothere"/);
    assert.deepEqual(fs.readdirSync(path.join(root, "containers")), []);
    assert.deepEqual(mountsUnder(root), []);
  });

  test("run -d --rm: the container and all it made are removed once it stops", async () => {
    const gone = (id: string, name: string) =>
      [
        path.join(root, "containers", id),
        path.join(root, "bundles", id),
        path.join(root, "logs", `${id}.log`),
        path.join(root, "logs", `${id}.err`),
        path.join(root, "names", name),
      ].every((p) => !fs.existsSync(p));
    const quick = ok(
      moat([...UK, "--rm", "--name", "quick", "default", "sh", "-c", "echo hi; exit 2"]),
    ).trim();
    await eventually("the exited --rm container to be removed", () => gone(quick, "quick"));
    const slow = ok(moat([...UK, "--rm", "--name", "slow", "default", "sleep", "1000"])).trim();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(fs.existsSync(path.join(root, "containers", slow)), true, "kept while it runs");
    assert.match(
      moat(["restart", "slow"]).stderr,
      /container slow was run with --rm: .* cannot be restarted/,
    );
    assert.equal(inspect(moat, "slow").State.Status, "running", "the refused restart left it alone");
    // sleep as PID 1 ignores TERM: the KILL after the 1 s grace ends it.
    ok(moat(["stop", "-t", "1", "slow"]));
    await eventually("the stopped --rm container to be removed", () => gone(slow, "slow"));
    assert.deepEqual(mountsUnder(root), []);
    assert.match(moat(["ps", "-a", "--format", "{{.Names}}"]).stdout, /^$/);
  });

  test("cp both ways; a hostile archive from the container writes nothing outside the destination", async () => {
    ok(moat([...UK, "--name", "cp", "default", "sleep", "1000"]));
    const host = tempDir();
    // container -> host: a file into an existing directory, a directory under a new name
    ok(moat(["cp", "cp:/etc/passwd", host]));
    assert.match(fs.readFileSync(path.join(host, "passwd"), "utf8"), /^root:x:0:0:/);
    ok(moat(["cp", "cp:/etc", path.join(host, "etc2")]));
    assert.ok(fs.readdirSync(path.join(host, "etc2")).includes("passwd"));
    // host -> container: a tree with a symlink into an existing directory, a file under a new name
    const src = path.join(host, "tree");
    fs.mkdirSync(path.join(src, "sub"), { recursive: true });
    fs.writeFileSync(path.join(src, "sub", "f"), "hello\n");
    fs.symlinkSync("/etc/shadow", path.join(src, "link"));
    ok(moat(["cp", src, "cp:/tmp"]));
    assert.equal(ok(moat(["exec", "cp", "cat", "/tmp/tree/sub/f"])), "hello\n");
    assert.equal(
      ok(moat(["exec", "cp", "readlink", "/tmp/tree/link"])),
      "/etc/shadow\n",
      "a symlink stays one",
    );
    ok(moat(["cp", path.join(src, "sub", "f"), "cp:/tmp/renamed"]));
    assert.equal(ok(moat(["exec", "cp", "cat", "/tmp/renamed"])), "hello\n");
    // and back: the symlink comes back as a symlink, not the host's /etc/shadow
    ok(moat(["cp", "cp:/tmp/tree", path.join(host, "back")]));
    assert.equal(fs.readlinkSync(path.join(host, "back", "link")), "/etc/shadow");
    assert.equal(fs.readFileSync(path.join(host, "back", "sub", "f"), "utf8"), "hello\n");

    assert.match(moat(["cp", "cp:/nonexistent", host]).stderr, /tar in cp failed \(status 1\)/);

    // A hostile container: its `tar` is a script printing a crafted archive that makes a
    // symlink to a host directory and then writes through it, and names ../ paths.
    const outside = tempDir();
    const evil = path.join(host, "evil.tar");
    {
      const pack = tar.pack();
      const done = pipeline(pack, fs.createWriteStream(evil));
      pack.entry({ name: "x", type: "directory", mode: 0o755 });
      pack.entry({ name: "x/link", type: "symlink", linkname: outside });
      pack.entry({ name: "x/link/pwned", type: "file", mode: 0o644 }, "owned\n");
      pack.finalize();
      await done;
    }
    const escapeTar = path.join(host, "escape.tar");
    {
      const pack = tar.pack();
      const done = pipeline(pack, fs.createWriteStream(escapeTar));
      pack.entry({ name: "x/../../../escaped", type: "file", mode: 0o644 }, "owned\n");
      pack.finalize();
      await done;
    }
    // The script prints /payload.tar; each crafted archive is copied there in turn.
    const payload = path.join(host, "payload.tar");
    fs.copyFileSync(evil, payload);
    ok(moat(["cp", payload, "cp:/payload.tar"]));
    ok(moat(["exec", "cp", "mkdir", "-p", "/usr/local/bin"]));
    const script = path.join(host, "tar");
    fs.writeFileSync(script, "#!/bin/sh\nexec cat /payload.tar\n", { mode: 0o755 });
    ok(moat(["cp", script, "cp:/usr/local/bin/tar"]));
    const dest = path.join(host, "dest");
    fs.mkdirSync(dest);
    const hostile = moat(["cp", "cp:/anything", dest]);
    assert.equal(hostile.status, 125);
    assert.match(hostile.stderr, /writes through .*x\/link, which is a symlink: nothing more was written/);
    assert.deepEqual(fs.readdirSync(outside), [], "nothing written through the symlink");
    // (cp into the container runs its tar too: take the script away while the payload goes in)
    ok(moat(["exec", "cp", "rm", "/usr/local/bin/tar"]));
    fs.copyFileSync(escapeTar, payload);
    ok(moat(["cp", payload, "cp:/payload.tar"]));
    ok(moat(["cp", script, "cp:/usr/local/bin/tar"]));
    const up = moat(["cp", "cp:/anything", dest]);
    assert.equal(up.status, 125);
    assert.match(up.stderr, /names "x\/..\/..\/..\/escaped", outside the copy/);
    assert.equal(fs.existsSync(path.join(host, "escaped")), false);
    assert.equal(fs.existsSync(path.join(path.dirname(host), "escaped")), false);

    assert.match(moat(["cp", "a", "b"]).stderr, /name the container on one side only/);
    assert.match(moat(["cp", "cp:rel", host]).stderr, /give the path in the container from its root/);
    ok(moat(["stop", "cp"]));
    assert.match(
      moat(["cp", "cp:/etc/passwd", host]).stderr,
      /moat cp needs a running container: cp is stopped/,
    );
    ok(moat(["rm", "cp"]));
  });

  test("ps --format and --filter with docker's names; stats, top, pause refused", async () => {
    const a = ok(moat([...UK, "--name", "alpha", "default", "sh", "-c", "exec sleep 1000"])).trim();
    const b = ok(moat([...UK, "--name", "beta", "default", "sh", "-c", "exit 4"])).trim();
    assert.equal(moat(["wait", "beta"]).stdout, "4\n");

    const tpl = moat(["ps", "-a", "--format", "{{.ID}}\\t{{.Names}}\\t{{.State}}"]);
    assert.deepEqual(
      ok(tpl).split("\n").filter(Boolean).sort(),
      [`${a.slice(0, 12)}\talpha\trunning`, `${b.slice(0, 12)}\tbeta\texited`].sort(),
    );
    const js = ok(moat(["ps", "--format", "json"]))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    assert.equal(js.length, 1, "without -a: running ones only");
    assert.equal(js[0].Names, "alpha");
    assert.equal(js[0].Image, "default");
    assert.match(js[0].Status, /^Up /);
    assert.equal(js[0].Isolation, "userkernel");
    const table = ok(moat(["ps", "-a", "--format", "table {{.Names}}\t{{.Status}}"])).split("\n");
    assert.match(table[0]!, /^NAMES +STATUS$/);
    assert.ok(
      table.some((l) => /^beta +Exited \(4\) /.test(l)),
      table.join("\n"),
    );

    const names = (args: string[]) =>
      ok(moat(["ps", "--format", "{{.Names}}", ...args]))
        .split("\n")
        .filter(Boolean)
        .sort();
    assert.deepEqual(names(["--filter", "status=exited"]), ["beta"], "a status filter sees stopped ones");
    assert.deepEqual(names(["--filter", "status=running"]), ["alpha"]);
    assert.deepEqual(names(["-a", "--filter", "name=alp"]), ["alpha"]);
    assert.deepEqual(names(["-a", "--filter", `id=${b.slice(0, 6)}`]), ["beta"]);
    assert.deepEqual(names(["-a", "--filter", "ancestor=default"]), ["alpha", "beta"]);
    assert.deepEqual(names(["-a", "--filter", "ancestor=other"]), []);
    assert.deepEqual(names(["-a", "--filter", "status=exited", "--filter", "status=running"]), [
      "alpha",
      "beta",
    ]);
    assert.deepEqual(names(["-a", "--filter", "status=exited", "--filter", "name=alpha"]), []);
    // labels: `moat run --label` keeps them as run.moat.label.* annotations
    ok(moat(["stop", "beta"]));
    annotate(root, b, { "run.moat.label.tier": "web" });
    ok(moat(["start", "beta"]));
    assert.equal(moat(["wait", "beta"]).stdout, "4\n");
    assert.deepEqual(names(["-a", "--filter", "label=tier"]), ["beta"]);
    assert.deepEqual(names(["-a", "--filter", "label=tier=web"]), ["beta"]);
    assert.deepEqual(names(["-a", "--filter", "label=tier=db"]), []);
    assert.deepEqual(inspect(moat, "beta").Config.Labels, { tier: "web" });

    assert.match(
      moat(["ps", "--format", "{{.Nope}}"]).stderr,
      /unknown field \.Nope: use one of \.ID, \.Names/,
    );
    assert.match(moat(["ps", "--format", "{{range .}}"]).stderr, /is not understood/);
    assert.match(
      moat(["ps", "--filter", "colour=red"]).stderr,
      /--filter "colour=red" is not a filter: use KEY=VALUE with KEY one of status, name/,
    );
    assert.match(
      moat(["ps", "--filter", "status=asleep"]).stderr,
      /--filter status=asleep: use one of created, restarting, running/,
    );

    // stats: one sample as a JSON line when piped
    const st = ok(moat(["stats", "--no-stream", "alpha"]))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    assert.equal(st.length, 1);
    assert.equal(st[0].id, a);
    assert.equal(st[0].name, "alpha");
    assert.equal(st[0].pids, 1);
    assert.ok(st[0].memoryBytes > 0 && st[0].memoryLimitBytes > st[0].memoryBytes, JSON.stringify(st[0]));
    assert.ok(st[0].cpuPercent >= 0);
    assert.match(moat(["stats", "--no-stream", "beta"]).stderr, /container beta is not running \(stopped\)/);
    // streamed: a JSON line per container every second until stopped (here: until we stop reading)
    const streamed = spawn(process.execPath, [MAIN, "--root", root, "stats", "alpha"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let lines = "";
    streamed.stdout.setEncoding("utf8").on("data", (d: string) => {
      lines += d;
    });
    try {
      await eventually("two samples", () => lines.split("\n").filter(Boolean).length >= 2, 20_000);
    } finally {
      streamed.kill();
    }
    for (const l of lines.split("\n").filter(Boolean)) assert.equal(JSON.parse(l).id, a);

    // top runs ps in the container, whose /proc lists the container's processes
    assert.match(ok(moat(["top", "alpha"])), /sleep 1000/);

    const pause = moat(["pause", "alpha"]);
    assert.equal(pause.status, 125);
    assert.match(pause.stderr, /pause is not supported by the userkernel isolation: .*use the vm isolation/);
    assert.equal(inspect(moat, "alpha").State.Status, "running");
    assert.match(moat(["unpause", "alpha"]).stderr, /container not paused/);
    assert.equal(ok(moat(["port", "alpha"])), "", "no -p, no ports");

    ok(moat(["rm", "-f", "alpha", "beta"]));
    assert.deepEqual(fs.readdirSync(path.join(root, "containers")), []);
  });
});

describe("moat run -d -t, stop/start/inspect/stats/top/port/pause/cp, vm (one container, two boots)", () => {
  const root = tempDir();
  const moat = cli(root);

  test("run -d -t, exec -d -t, port, inspect, stats, top, pause/unpause, cp, stop -t, start, the stop-signal and stop-timeout annotations", async () => {
    // `sleep & wait`: a trapped signal interrupts wait at once (a foreground sleep would delay it).
    const script =
      'trap "" TERM; trap "echo got-usr1" USR1; tty; echo ready; while :; do sleep 1 & wait $!; done';
    const id = ok(
      moat([
        "run",
        "-d",
        "-t",
        "--isolation",
        "vm",
        "--memory",
        "256m",
        "-p",
        "18089:80",
        "--name",
        "v",
        "default",
        "sh",
        "-c",
        script,
      ]),
    ).trim();
    // -t: a terminal (kept by moat's tty keeper after run returned); what it shows is the log
    const TTY_RUN = /^\/dev\/pts\/\d+\r\nready\r\n$/;
    await eventually("the container's output", () => TTY_RUN.test(moat(["logs", "v"]).stdout), 120_000);
    assert.equal(inspect(moat, "v").Config.Tty, true);
    ok(moat(["exec", "-d", "-t", "v", "sh", "-c", "tty; echo from-exec"]));
    await eventually(
      "the detached exec's terminal output",
      () => /\/dev\/pts\/\d+\r\nfrom-exec\r\n/.test(moat(["logs", "v"]).stdout),
      30_000,
    );

    assert.equal(ok(moat(["port", "v"])), "80/tcp -> 127.0.0.1:18089\n");
    assert.equal(ok(moat(["port", "v", "80"])), "127.0.0.1:18089\n");
    assert.match(moat(["port", "v", "81"]).stderr, /no public port '81\/tcp' published for v/);

    const i = inspect(moat, "v");
    assert.equal(i.HostConfig.Isolation, "vm");
    assert.equal(i.HostConfig.Memory, 256 * 1024 * 1024);
    assert.deepEqual(i.HostConfig.PortBindings, { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "18089" }] });
    assert.equal(i.State.OOMKilled, false);

    const st = JSON.parse(ok(moat(["stats", "--no-stream", "v"])).trim());
    assert.equal(st.memoryLimitBytes, 256 * 1024 * 1024);
    assert.ok(st.pids >= 1, JSON.stringify(st));
    assert.ok(st.memoryBytes > 0, JSON.stringify(st));

    const top = ok(moat(["top", "v"]));
    assert.match(top, /PID/);
    assert.match(top, /trap "" TERM/);

    ok(moat(["pause", "v"]));
    assert.equal(inspect(moat, "v").State.Status, "paused");
    assert.equal(inspect(moat, "v").State.Paused, true);
    assert.match(ok(moat(["ps", "--format", "{{.State}}"])), /^paused\n$/);
    assert.match(moat(["exec", "v", "true"]).stderr, /paused container/);
    ok(moat(["unpause", "v"]));
    assert.equal(inspect(moat, "v").State.Status, "running");
    assert.equal(ok(moat(["exec", "v", "echo", "thawed"])), "thawed\n");

    // cp both ways through the guest's tar
    const host = tempDir();
    fs.writeFileSync(path.join(host, "in.txt"), "to the guest\n");
    ok(moat(["cp", path.join(host, "in.txt"), "v:/tmp/"]));
    assert.equal(ok(moat(["exec", "v", "cat", "/tmp/in.txt"])), "to the guest\n");
    ok(moat(["cp", "v:/etc/passwd", path.join(host, "passwd")]));
    assert.match(fs.readFileSync(path.join(host, "passwd"), "utf8"), /^root:x:0:0:/);

    // stop -t 2: TERM is ignored, KILL after the grace period
    const s0 = Date.now();
    const stop = JSON.parse(ok(moat(["stop", "-t", "2", "v"])));
    const stopMs = Date.now() - s0;
    assert.equal(stop.status, 137);
    assert.ok(stopMs >= 2000, `stop returned after ${stopMs} ms, before the grace period`);
    assert.equal(inspect(moat, "v").State.ExitCode, 137);
    assert.equal(inspect(moat, "v").State.OOMKilled, false, "a KILL from stop is no OOM kill");

    // what --stop-signal USR1 --stop-timeout 2 write; start runs it again (a second boot)
    annotate(root, id, { "run.moat.stop-signal": "SIGUSR1", "run.moat.stop-timeout": "2" });
    ok(moat(["start", "v"]));
    await eventually(
      "the second run's output",
      () => (moat(["logs", "v"]).stdout.match(/ready\r\n/g) ?? []).length === 2,
      120_000,
    );
    assert.equal(inspect(moat, "v").Config.StopSignal, "SIGUSR1");
    const t0 = Date.now();
    const stop2 = JSON.parse(ok(moat(["stop", "v"])));
    const stop2Ms = Date.now() - t0;
    assert.equal(stop2.status, 137, "USR1 is trapped, so KILL ends it");
    assert.ok(stop2Ms >= 2000 && stop2Ms < 9000, `the 2 s stop timeout, not 10 s: ${stop2Ms} ms`);
    await eventually("the trap's output", () => moat(["logs", "v"]).stdout.includes("got-usr1"), 5000);
    ok(moat(["rm", "v"]));
    assert.deepEqual(mountsUnder(root), []);
    console.log(`vm: stop -t 2 ${stopMs} ms, stop with a 2 s stop timeout ${stop2Ms} ms`);
  });
});
