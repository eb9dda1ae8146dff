// Blocking (kernel/wait.ts) on real traced programs: a task waits on a pipe, a FIFO, stdin,
// a poll or a sleep until what it waits for happens, a kill ends any of those waits at once
// and leaves no timer behind, and a long pure-timeout poll keeps the kernel idle.
import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import * as fs from "node:fs";
import * as path from "node:path";
import { PassThrough, Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { Kernel } from "../../src/userkernel/kernel/kernel.js";
import { runStatic } from "../../src/userkernel/kernel/run.js";
import { Collector, runNative, runUser, workdir } from "./helpers.js";

async function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Node timers alive in this process (a block's deadline is one). */
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("blocking: wait queues, deadlines and interruption", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("block");
  });
  after(() => w.remove());

  it("poll on several pipes, with timeouts, answers as on Linux (the *NORM bits, the time left written back)", async () => {
    const native = await runNative(bin, ["pollmany"]);
    const user = await runUser(bin, ["pollmany"]);
    assert.equal(native.code, 0, native.stderr);
    assert.equal(user.code, 0, user.stderr);
    assert.equal(user.stdout, native.stdout);
    for (const line of [
      "none ready, 50ms: 0 0 0 0",
      "third written: 1 0 0 1",
      "first's writer closed: 2 10 0 1",
      "full pipe, 30ms: 0 0 (filled 16 pages)",
      "after a read: 1 4",
      "rdnorm/wrnorm: 2 40 104",
      "select timed out: 0 left 0.000000",
      "ppoll ready at once: 1 left between 4 and 5 s: 1",
      "pselect6 timed out: 0 left 0.000000000",
    ])
      assert.ok(user.stdout.includes(`${line}\n`), `missing "${line}" in:\n${user.stdout}`);
  });

  it("a read of stdin sleeps until the test feeds it, and sees its end", async () => {
    const stdin = new PassThrough();
    const stdout = new Collector();
    const run = runStatic({
      binary: bin,
      argv: [bin, "stdin"],
      env: [],
      stdin,
      stdout,
      stderr: new Collector(),
    });
    await until(() => stdout.text() === "waiting\n", "the program to start");
    stdin.write("one");
    await until(() => stdout.text().includes("read 3: one\n"), "the first read");
    stdin.write("two");
    await until(() => stdout.text().includes("read 3: two\n"), "the second read");
    stdin.end();
    const r = await run;
    assert.equal(r.code, 0);
    assert.equal(stdout.text(), "waiting\nread 3: one\nread 3: two\nend: 0\n");
  });

  it("a FIFO reader blocked in open, then in read, wakes when another process of the kernel writes; a regular file polls ready", async () => {
    const root = path.join(w.dir, "fifo-root");
    fs.mkdirSync(path.join(root, "tmp"), { recursive: true });
    fs.copyFileSync(bin, path.join(root, "block"));
    fs.chmodSync(path.join(root, "block"), 0o755);
    const kernel = await Kernel.boot({ rootfs: root });
    try {
      const out = new Collector();
      const err = new Collector();
      // PID 1 stays free: were the reader the namespace's init, its end could kill the writer
      // before the writer's own exit (a pid namespace's rule), which made this test racy.
      kernel.allocPid();
      const reader = kernel.run({
        binary: "/block",
        argv: ["/block", "fifo-read", "/tmp/f"],
        env: [],
        stdout: out,
        stderr: err,
      });
      await until(() => out.text() === "waiting\n", "the reader to make the FIFO");
      // Blocked in open: /proc shows it sleeping (state S), as Linux does.
      await new Promise((r) => setTimeout(r, 300));
      const state = new Collector();
      const looked = await kernel.run({
        binary: "/block",
        argv: ["/block", "state", "2"],
        env: [],
        stdout: state,
        stderr: state,
      });
      assert.equal(looked.code, 0, state.text());
      assert.equal(state.text(), "state of 2: S\n");
      const werr = new Collector();
      const writer = await kernel.run({
        binary: "/block",
        argv: ["/block", "fifo-write", "/tmp/f"],
        env: [],
        stdout: new Collector(),
        stderr: werr,
      });
      assert.equal(writer.code, 0, werr.text());
      const r = await reader;
      assert.equal(r.code, 0, `${JSON.stringify(r)} ${err.text()}`);
      assert.equal(out.text(), "waiting\ngot: through the fifo\n");
      // A regular file (no queue: it never waits) is ready for both, whatever its access mode.
      const native = await runNative(bin, ["pollfile", bin]);
      const polled = new Collector();
      const pf = await kernel.run({
        binary: "/block",
        argv: ["/block", "pollfile", "/block"],
        env: [],
        stdout: polled,
        stderr: polled,
      });
      assert.equal(pf.code, 0, polled.text());
      assert.equal(native.stdout, "regular file: 1 145\n");
      assert.equal(polled.text(), native.stdout);
    } finally {
      await kernel.close();
    }
  });

  /** A stdout that takes chunks but acknowledges none until release(): it pushes back. */
  class HeldOutput extends Writable {
    bytes = 0;
    private held: Array<() => void> = [];
    private open = false;
    constructor() {
      super({ highWaterMark: 4096 });
    }
    override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void {
      this.bytes += c.length;
      if (this.open) cb();
      else this.held.push(cb);
    }
    release(): void {
      this.open = true;
      for (const cb of this.held.splice(0)) cb();
    }
  }

  it("a write to a stdout that pushes back sleeps until it drains, then goes on", async () => {
    const stdout = new HeldOutput();
    const run = runStatic({
      binary: bin,
      argv: [bin, "flood", "2000"],
      env: [],
      stdout,
      stderr: new Collector(),
    });
    await until(() => stdout.bytes > 0, "the first write");
    await new Promise((r) => setTimeout(r, 300));
    // Blocked: the stream holds no more than its high-water mark and a write or two.
    assert.ok(
      stdout.bytes < 200_000 / 2,
      `the program went on writing (${stdout.bytes} bytes) into a full stream`,
    );
    stdout.release();
    const r = await run;
    assert.equal(r.code, 0);
    assert.equal(stdout.bytes, 200_000);
  });

  it("a task blocked writing to a stdout that pushes back ends at once when killed", async () => {
    const stdout = new HeldOutput();
    const ac = new AbortController();
    const run = runStatic({
      binary: bin,
      argv: [bin, "flood", "2000"],
      env: [],
      stdout,
      stderr: new Collector(),
      signal: ac.signal,
    });
    await until(() => stdout.bytes > 0, "the first write");
    await new Promise((r) => setTimeout(r, 300));
    ac.abort();
    const r = await run;
    assert.equal(r.signal, "SIGKILL");
    assert.ok(stdout.bytes < 200_000, "it ended before writing everything");
  });

  for (const mode of ["sleep", "poll", "read"]) {
    it(`a task blocked in ${mode === "sleep" ? "nanosleep(60 s)" : `${mode} of an empty pipe`} ends at once when killed, leaving no timer`, async () => {
      const before = timers();
      const ac = new AbortController();
      const stdout = new Collector();
      const run = runStatic({
        binary: bin,
        argv: [bin, mode],
        env: [],
        stdout,
        stderr: new Collector(),
        signal: ac.signal,
      });
      await until(() => stdout.text() === "waiting\n", "the program to start waiting");
      // Let it reach the wait (the next system call after the line it printed).
      await new Promise((r) => setTimeout(r, 300));
      ac.abort();
      const r = await run;
      assert.equal(r.signal, "SIGKILL");
      assert.equal(stdout.text(), "waiting\n", "it never got past its wait");
      assert.equal(timers(), before, "a timer outlived the killed task");
    });
  }

  it("a long poll with no descriptors (a pure timeout) arms one timer and leaves the kernel idle", async () => {
    const stdout = new Collector();
    const run = runStatic({
      binary: bin,
      argv: [bin, "idle", "2000"],
      env: [],
      stdout,
      stderr: new Collector(),
    });
    await until(() => stdout.text() === "waiting\n", "the program to start waiting");
    // From here the program only waits: count the timers the kernel arms and the CPU it uses.
    let armed = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === "Timeout") armed++;
      },
    }).enable();
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let r: Awaited<typeof run>;
    try {
      r = await run;
    } finally {
      hook.disable();
    }
    const cpu = process.cpuUsage(cpu0);
    const wallUs = Number((process.hrtime.bigint() - t0) / 1000n);
    assert.equal(r.code, 0);
    assert.equal(stdout.text(), "waiting\npoll: 0\n");
    // One deadline timer (armed again only if Node fired it a little early): no re-check slices.
    assert.ok(armed <= 2, `the kernel armed ${armed} timers during one poll`);
    // Loose: the event loop sleeps through the wait (a busy loop would use the whole of it).
    assert.ok(cpu.user + cpu.system < wallUs / 4, `used ${cpu.user + cpu.system} us of CPU in ${wallUs} us`);
  });
});
