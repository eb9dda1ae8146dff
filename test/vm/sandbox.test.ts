// The vm isolation behind the Sandbox interface, as every front door uses it: one real
// QEMU guest (TCG here) shared by every assertion, a bundle of the built-in busybox
// image, stdio through Node streams, exit statuses, signals, and nothing left behind.
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { removeBundle } from "../../src/image/bundle.js";
import type { Sandbox } from "../../src/sandbox/sandbox.js";
import type { Spec } from "../../src/spec/runtime.js";
import { ensureAssets } from "../../src/vm/assets/build.js";
import { VmBackend } from "../../src/vm/sandbox.js";
import { Collector } from "../helpers/streams.js";
import { defaultBundle, destroyAndCheck, qemuProcessesMentioning } from "./helpers.js";

describe("vm sandbox", () => {
  let tmp: string;
  let bundleDir: string;
  let spec: Spec;
  let rootfs: string;
  let stateDir: string;
  let sandbox: Sandbox | undefined;
  let kernelRelease: string;
  let n = 0;

  before(async () => {
    kernelRelease = (await ensureAssets()).manifest.kernelRelease;
    ({ tmp, bundleDir, spec, rootfs } = await defaultBundle("moat-vm-sandbox-test-"));
    stateDir = join(tmp, "state");
    sandbox = await new VmBackend().createSandbox({ id: "vm-test", stateDir, memoryMiB: 512 });
  });

  after(async () => {
    try {
      await destroyAndCheck(sandbox, tmp, stateDir);
    } finally {
      for (const pid of qemuProcessesMentioning(tmp)) process.kill(pid, "SIGKILL");
      if (bundleDir) await removeBundle(bundleDir).catch(() => {});
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  async function run(args: string[], stdin?: PassThrough) {
    const id = `c${++n}`;
    const stdout = new Collector();
    const stderr = new Collector();
    await sandbox!.create({
      id,
      bundle: bundleDir,
      spec: { ...spec, process: { ...spec.process!, args } },
      rootfs,
      stdio: { stdout, stderr, ...(stdin ? { stdin } : {}) },
    });
    await sandbox!.start(id);
    return { id, stdout, stderr, done: sandbox!.wait(id) };
  }

  it("runs on the guest kernel, not the host's", async () => {
    const r = await run(["sh", "-c", "uname -r; cat /proc/version"]);
    assert.equal((await r.done).status, 0);
    const [uname, version] = r.stdout.text().split("\n");
    assert.equal(uname, kernelRelease);
    assert.notEqual(uname, release());
    assert.ok(version!.startsWith(`Linux version ${kernelRelease} `), version);
    await sandbox!.delete(r.id);
  });

  it("keeps stdout and stderr apart and passes exit codes", async () => {
    const r = await run(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    const st = await r.done;
    assert.equal(st.status, 3);
    assert.equal(st.code, 3);
    assert.equal(r.stdout.text(), "out\n");
    assert.equal(r.stderr.text(), "err\n");
  });

  it("runs with the configured user, working directory and environment only", async () => {
    const id = `c${++n}`;
    const stdout = new Collector();
    await sandbox!.create({
      id,
      bundle: bundleDir,
      spec: {
        ...spec,
        process: {
          ...spec.process!,
          args: ["/bin/sh", "-c", "id -u; id -g; pwd; env | sort"],
          user: { uid: 1000, gid: 1001 },
          cwd: "/tmp",
          env: ["PATH=/bin", "ONLY=this"],
        },
      },
      rootfs,
      stdio: { stdout },
    });
    await sandbox!.start(id);
    assert.equal((await sandbox!.wait(id)).status, 0);
    const lines = stdout.text().split("\n");
    assert.deepEqual(lines.slice(0, 3), ["1000", "1001", "/tmp"]);
    // sh adds PWD and SHLVL itself; nothing of the agent's or the host's environment leaks in.
    assert.deepEqual(
      lines.slice(3).filter((l) => l !== "" && !/^(PWD|SHLVL)=/.test(l)),
      ["ONLY=this", "PATH=/bin"],
    );
  });

  it("applies the config's groups, rlimits, umask, capabilities and no_new_privs, for init and exec", async () => {
    const id = `c${++n}`;
    const show =
      'id -G; ulimit -n; ulimit -Hn; umask; grep -E "^(CapBnd|CapEff|NoNewPrivs)" /proc/self/status';
    const process = {
      ...spec.process!,
      args: ["/bin/sh", "-c", `${show}; sleep 30`],
      user: { uid: 1000, gid: 1001, additionalGids: [10, 20], umask: 0o027 },
      rlimits: [{ type: "RLIMIT_NOFILE", soft: 123, hard: 456 }],
      capabilities: {
        bounding: ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        effective: [],
        permitted: [],
        inheritable: [],
        ambient: [],
      },
      noNewPrivileges: true,
    };
    const stdout = new Collector();
    await sandbox!.create({ id, bundle: bundleDir, spec: { ...spec, process }, rootfs, stdio: { stdout } });
    await sandbox!.start(id);
    const expected = [
      "1001 10 20",
      "123",
      "456",
      "0027",
      "CapEff:\t0000000000000000",
      "CapBnd:\t0000000000000420",
      "NoNewPrivs:\t1",
    ];
    for (let i = 0; i < 300 && stdout.text().split("\n").length <= expected.length; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(stdout.text().split("\n").slice(0, expected.length), expected);
    // An exec goes through the same step with its own process config: root, all capabilities.
    const out = new Collector();
    await sandbox!.exec({
      containerId: id,
      execId: "creds",
      process: {
        ...process,
        args: ["/bin/sh", "-c", show],
        user: { uid: 0, gid: 0 },
        rlimits: [],
        noNewPrivileges: false,
        capabilities: undefined,
      },
      stdio: { stdout: out },
    });
    assert.equal((await sandbox!.wait(id, "creds")).status, 0);
    const lines = out.text().split("\n");
    assert.equal(lines[0], "0");
    assert.equal(lines[3], "0022");
    assert.notEqual(
      lines[4],
      "CapBnd:\t0000000000000420",
      "the exec is not bound by the init's capabilities",
    );
    assert.equal(lines[6], "NoNewPrivs:\t0");
    await sandbox!.signal(id, "SIGKILL");
    await sandbox!.wait(id);
  });

  it("applies the config's seccomp profile to the init and to every exec", async () => {
    const id = `c${++n}`;
    const stdout = new Collector();
    const seccomp = {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }],
    };
    await sandbox!.create({
      id,
      bundle: bundleDir,
      spec: {
        ...spec,
        linux: { ...spec.linux, seccomp },
        process: {
          ...spec.process!,
          args: ["/bin/sh", "-c", "mkdir /tmp/a 2>&1; touch /tmp/b && echo touched; sleep 30"],
        },
      },
      rootfs,
      stdio: { stdout },
    });
    await sandbox!.start(id);
    for (let i = 0; i < 300 && !stdout.text().includes("touched"); i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.match(stdout.text(), /mkdir: can't create directory '\/tmp\/a': Permission denied\ntouched\n/);
    const out = new Collector();
    await sandbox!.exec({
      containerId: id,
      execId: "sc",
      process: { ...spec.process!, args: ["/bin/sh", "-c", "mkdir /tmp/c 2>&1; ls /tmp"] },
      stdio: { stdout: out },
    });
    assert.equal((await sandbox!.wait(id, "sc")).status, 0);
    assert.equal(out.text(), "mkdir: can't create directory '/tmp/c': Permission denied\nb\n");
    await sandbox!.signal(id, "SIGKILL");
    await sandbox!.wait(id);
  });

  it("passes stdin through", async () => {
    const stdin = new PassThrough();
    const r = await run(["cat"], stdin);
    stdin.write("hello ");
    stdin.end("vm\n");
    assert.equal((await r.done).status, 0);
    assert.equal(r.stdout.text(), "hello vm\n");
  });

  it("reports 128+signal after SIGKILL, and shows only the container's processes", async () => {
    const r = await run(["sh", "-c", "ps -o pid,comm; echo ready; exec sleep 1000"]);
    while (!r.stdout.text().includes("ready")) await new Promise((res) => setTimeout(res, 50));
    const ps = r.stdout
      .text()
      .split("\n")
      .slice(1)
      .filter((l) => l.trim() !== "" && l !== "ready");
    // the shell (pid 1) and ps itself; no agent, no node, no init of the guest
    assert.ok(ps.length <= 2, ps.join("\n"));
    assert.match(ps[0]!, /^\s*1\s+sh$/);
    assert.ok(!r.stdout.text().includes("node"));
    const stats = await sandbox!.stats(r.id);
    assert.ok(stats.pids >= 1, JSON.stringify(stats));
    assert.ok(stats.memoryBytes > 0, JSON.stringify(stats));
    await sandbox!.signal(r.id, "SIGKILL");
    const st = await r.done;
    assert.equal(st.status, 128 + 9);
    assert.equal(st.signal, "SIGKILL");
  });

  it("execs a second process in a running container", async () => {
    const r = await run(["sh", "-c", "echo marker > /tmp/m; echo up; exec sleep 1000"]);
    while (!r.stdout.text().includes("up")) await new Promise((res) => setTimeout(res, 50));
    const out = new Collector();
    await sandbox!.exec({
      containerId: r.id,
      execId: "e1",
      process: { ...spec.process!, args: ["sh", "-c", "cat /tmp/m; hostname; exit 4"] },
      stdio: { stdout: out },
    });
    const st = await sandbox!.wait(r.id, "e1");
    assert.equal(st.status, 4);
    assert.equal(out.text(), `marker\n${spec.hostname ?? r.id}\n`);
    await sandbox!.signal(r.id, "SIGKILL");
    await r.done;
  });

  it("runs a process on a terminal whose size follows resize()", async () => {
    const id = `c${++n}`;
    const stdout = new Collector();
    const stderr = new Collector();
    const stdin = new PassThrough();
    await sandbox!.create({
      id,
      bundle: bundleDir,
      spec: {
        ...spec,
        process: { ...spec.process!, args: ["sh", "-c", "tty; stty size; read x; stty size"] },
      },
      rootfs,
      stdio: { stdin, stdout, stderr, terminal: true },
    });
    await sandbox!.start(id);
    while (!/\d+ \d+\r\n/.test(stdout.text())) await new Promise((res) => setTimeout(res, 50));
    await sandbox!.resize(id, { width: 100, height: 40 });
    stdin.write("go\n");
    const st = await sandbox!.wait(id);
    assert.equal(st.status, 0, stdout.text());
    // A terminal turns "\n" into "\r\n" and echoes the input.
    const lines = stdout.text().split("\r\n");
    assert.match(lines[0]!, /^\/dev\/pts\/\d+$/);
    assert.equal(lines[1], "24 80");
    assert.equal(lines[2], "go");
    assert.equal(lines[3], "40 100");
    assert.equal(stderr.text(), "");
    await assert.rejects(
      sandbox!.resize(id, { width: 0, height: 10 }),
      (e: unknown) => e instanceof Error && /out of range/.test(e.message),
    );
    await sandbox!.delete(id);
  });

  it("gives an exec its own terminal, and no terminal without one", async () => {
    const r = await run(["sh", "-c", "tty; echo up; exec sleep 1000"]);
    while (!r.stdout.text().includes("up")) await new Promise((res) => setTimeout(res, 50));
    assert.equal(r.stdout.text(), "not a tty\nup\n");
    const out = new Collector();
    await sandbox!.exec({
      containerId: r.id,
      execId: "t1",
      process: {
        ...spec.process!,
        args: ["sh", "-c", "tty && exit 5"],
        consoleSize: { height: 30, width: 90 },
      },
      stdio: { stdout: out, terminal: true },
    });
    assert.equal((await sandbox!.wait(r.id, "t1")).status, 5);
    assert.match(out.text(), /^\/dev\/pts\/\d+\r\n$/);
    await assert.rejects(
      sandbox!.resize(r.id, { width: 80, height: 24 }),
      (e: unknown) => e instanceof Error && /has no terminal/.test(e.message),
    );
    await sandbox!.signal(r.id, "SIGKILL");
    assert.equal((await r.done).status, 137);
  });

  it("delivers signals to the process on a terminal, not to its wrappers", async () => {
    const id = `c${++n}`;
    const stdout = new Collector();
    await sandbox!.create({
      id,
      bundle: bundleDir,
      spec: {
        ...spec,
        process: {
          ...spec.process!,
          args: ["sh", "-c", 'trap "echo got-usr1; exit 7" USR1; echo up; while :; do sleep 1; done'],
        },
      },
      rootfs,
      stdio: { stdout, terminal: true },
    });
    await sandbox!.start(id);
    while (!stdout.text().includes("up")) await new Promise((res) => setTimeout(res, 50));
    await sandbox!.signal(id, "SIGUSR1");
    assert.equal((await sandbox!.wait(id)).status, 7, stdout.text());
    assert.equal(stdout.text(), "up\r\ngot-usr1\r\n");
    await sandbox!.delete(id);
  });

  it("lets two containers talk over loopback but keeps their files apart; host rootfs untouched", async () => {
    const server = await run(["sh", "-c", "echo secret > /srv-only; nc -l -p 7777"]);
    const before = readdirSync(rootfs).sort();
    let client: Awaited<ReturnType<typeof run>> | undefined;
    for (let i = 0; i < 40; i++) {
      client = await run([
        "sh",
        "-c",
        "echo hi-from-client | nc 127.0.0.1 7777; ls /srv-only 2>&1; echo > /written-by-client",
      ]);
      await client.done;
      if (!client.stdout.text().includes("refused") && !client.stderr.text().includes("refused")) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal((await server.done).status, 0);
    assert.equal(server.stdout.text(), "hi-from-client\n");
    assert.match(client!.stdout.text() + client!.stderr.text(), /No such file/);
    assert.deepEqual(readdirSync(rootfs).sort(), before);
    assert.equal(existsSync(join(rootfs, "srv-only")), false);
    assert.equal(existsSync(join(rootfs, "written-by-client")), false);
  });
});
