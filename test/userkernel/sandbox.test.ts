// The userkernel behind the Sandbox interface, as every front door uses it: a bundle of the
// built-in busybox image, stdio through Node streams, exit statuses, signals, and nothing
// left behind.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { createBundle, removeBundle } from "../../src/image/bundle.js";
import { DEFAULT_IMAGE, ensureDefaultImage } from "../../src/image/default-image.js";
import { ImageStore } from "../../src/image/store.js";
import type { Sandbox } from "../../src/sandbox/sandbox.js";
import type { Spec } from "../../src/spec/runtime.js";
import { UserkernelBackend } from "../../src/userkernel/sandbox.js";
import { childrenOf } from "../helpers/procs.js";
import { Collector } from "../helpers/streams.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

describe("userkernel sandbox", () => {
  let store: ImageStore;
  let bundleDir: string;
  let spec: Spec;
  let rootfs: string;
  let sandbox: Sandbox;
  let n = 0;
  before(async () => {
    store = await ImageStore.open(tempDir());
    await ensureDefaultImage(store);
    bundleDir = path.join(tempDir(), "bundle");
    const b = await createBundle(store, DEFAULT_IMAGE, bundleDir);
    spec = b.spec;
    rootfs = b.rootfs;
    sandbox = await new UserkernelBackend().createSandbox({ id: "uk-test", stateDir: tempDir() });
  });
  after(async () => {
    await sandbox?.destroy();
    if (bundleDir) await removeBundle(bundleDir);
    cleanupTempDirs();
  });

  async function run(args: string[], stdin?: PassThrough) {
    const id = `c${++n}`;
    const stdout = new Collector();
    const stderr = new Collector();
    await sandbox.create({
      id,
      bundle: bundleDir,
      spec: { ...spec, process: { ...spec.process!, args } },
      rootfs,
      stdio: { stdout, stderr, ...(stdin ? { stdin } : {}) },
    });
    await sandbox.start(id);
    return { id, stdout, stderr, done: sandbox.wait(id) };
  }

  test("stdout and stderr stay apart; exit codes pass through", async () => {
    const r = await run(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    const status = await r.done;
    assert.equal(status.code, 3);
    assert.equal(status.status, 3);
    assert.equal(r.stdout.text(), "out\n");
    assert.equal(r.stderr.text(), "err\n");
    await sandbox.delete(r.id);
  });

  test("root.readonly: the root refuses writes with EROFS, /tmp takes them; an --init annotation is refused", async () => {
    const id = `c${++n}`;
    const stdout = new Collector();
    const stderr = new Collector();
    const script = "echo x > /f || echo root-ro; echo y > /tmp/f && echo tmp-ok";
    await sandbox.create({
      id,
      bundle: bundleDir,
      spec: {
        ...spec,
        root: { path: "rootfs", readonly: true },
        process: { ...spec.process!, args: ["sh", "-c", script] },
      },
      rootfs,
      stdio: { stdout, stderr },
    });
    await sandbox.start(id);
    assert.equal((await sandbox.wait(id)).code, 0);
    assert.equal(stdout.text(), "root-ro\ntmp-ok\n");
    assert.match(stderr.text(), /can't create \/f: Read-only file system/);
    await assert.rejects(
      sandbox.create({
        id: `c${++n}`,
        bundle: bundleDir,
        spec: { ...spec, annotations: { "run.moat.init": "true" } },
        rootfs,
        stdio: { stdout: new Collector(), stderr: new Collector() },
      }),
      /the userkernel has no init to put in front of the command yet/,
    );
  });

  test("uname shows moat's kernel, not the host's", async () => {
    const r = await run(["uname", "-r"]);
    await r.done;
    assert.notEqual(r.stdout.text().trim(), (await import("node:os")).release());
    assert.match(r.stdout.text(), /moat/);
  });

  test("stdin passes through and closeStdin gives EOF", async () => {
    const stdin = new PassThrough();
    const r = await run(["wc", "-c"], stdin);
    stdin.write("hello sandbox\n");
    await new Promise((res) => setTimeout(res, 100));
    await sandbox.closeStdin(r.id);
    const status = await r.done;
    assert.equal(status.code, 0);
    assert.equal(r.stdout.text().trim(), "14");
  });

  test("a signal ends a waiting process: 128+9", async () => {
    const stdin = new PassThrough();
    const r = await run(["cat"], stdin);
    await sandbox.signal(r.id, "SIGKILL");
    const status = await r.done;
    assert.equal(status.signal, "SIGKILL");
    assert.equal(status.status, 137);
  });

  test("a binary that is not in the image exits 127 with docker's message, as in the vm", async () => {
    const r = await run(["/no/such/program"]);
    assert.equal((await r.done).status, 127);
    assert.match(r.stderr.text(), /exec: "\/no\/such\/program": stat \/no\/such\/program: no such file/);
  });

  test("SIGKILL of the process running the sandbox leaves no stub and no gofer", async () => {
    const script = `
      const { UserkernelBackend } = await import(${JSON.stringify(new URL("../../src/userkernel/sandbox.js", import.meta.url).href)});
      const spec = JSON.parse(process.argv[1]);
      const sb = await new UserkernelBackend().createSandbox({ id: "k", stateDir: "/tmp" });
      await sb.create({ id: "k", bundle: "", spec, rootfs: process.argv[2], stdio: { stdin: process.stdin, stdout: process.stdout } });
      await sb.start("k");
      process.stdout.write("started\\n");
    `;
    const child = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        script,
        JSON.stringify({ ...spec, process: { ...spec.process!, args: ["cat"] } }),
        rootfs,
      ],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => d.toString().includes("started") && resolve());
      child.on("exit", (code) => reject(new Error(`child exited early (${code})`)));
    });
    const kids = childrenOf(child.pid!);
    assert.ok(kids.length >= 2, `the stub and the gofer run (children: ${kids})`);
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
    const deadline = Date.now() + 5000;
    let alive = kids;
    while (Date.now() < deadline) {
      alive = kids.filter((p) => {
        try {
          process.kill(p, 0);
          return !readFileSync(`/proc/${p}/stat`, "utf8").includes(") Z");
        } catch {
          return false;
        }
      });
      if (alive.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(alive, [], "no stub or gofer outlives the kernel");
  });
});
