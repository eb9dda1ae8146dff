// The kernel's process model as its callers see it: spawn's ProcessHandle (signal, wait,
// usage over the process's tasks, its stubs), the pid namespace that /proc lists (distinct
// pids, never reused), the one memory file every process allocates from (and gives back),
// a blocked signal from outside waiting in the group's pending set, and exit statuses in
// Linux's wait-status encoding.
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { Kernel } from "../../src/userkernel/kernel/kernel.js";
import { waitStatus } from "../../src/userkernel/kernel/thread-group.js";
import { alive, Collector, workdir } from "./helpers.js";
import { BUSYBOX_ENV, type BusyboxBundle, busyboxBundle } from "./rootfs-run.js";

/** Resolves once `out` has printed `text`. */
async function printed(out: Collector, text: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!out.text().includes(text)) {
    if (Date.now() > end)
      throw new Error(`never printed ${JSON.stringify(text)}; got ${JSON.stringify(out.text())}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("wait statuses", () => {
  it("encode an exit code in bits 8-15 and a signal death in bits 0-6, as Linux's wait4", () => {
    assert.equal(waitStatus({ code: 0 }), 0);
    assert.equal(waitStatus({ code: 3 }), 0x300);
    assert.equal(waitStatus({ code: 255 }), 0xff00);
    assert.equal(waitStatus({ signal: 15 }), 15);
    assert.equal(waitStatus({ signal: 11, core: true }), 0x8b);
  });
});

describe("ProcessHandle", { timeout: 120_000 }, () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let spin = "";
  let blocked = "";
  before(async () => {
    w = await workdir();
    [spin, blocked] = await Promise.all([w.compile("spin"), w.compile("blocked")]);
  });
  after(() => w.remove());

  it("measures the CPU time and memory of the process's tasks and names its stub", async () => {
    const kernel = await Kernel.boot({ log: () => {} });
    try {
      const stdin = new PassThrough();
      const out = new Collector();
      const h = await kernel.spawn({ binary: spin, argv: [spin, "300"], env: [], stdin, stdout: out });
      const [stub] = h.hostPids();
      assert.ok(stub !== undefined && (await alive(stub)), "its stub runs");
      await printed(out, "spun\n");
      const u = h.usage();
      // 300 ms of its own CPU time, counted in 10 ms ticks by the host.
      assert.ok(u.cpuNanos >= 250e6, `cpu ${u.cpuNanos} ns`);
      assert.ok(u.memoryBytes > 0, `memory ${u.memoryBytes}`);
      assert.equal(u.tasks, 1);
      assert.ok(kernel.mem.allocated > 0, "its memory comes from the kernel's memory file");
      stdin.end();
      const r = await h.wait();
      assert.equal(r.code, 0);
      assert.equal(r.waitStatus, 0);
      assert.deepEqual(h.hostPids(), []);
      assert.equal(h.usage().tasks, 0);
      assert.equal(await alive(stub), false, "its stub is gone");
      assert.equal(kernel.mem.allocated, 0, "its memory went back to the memory file");
    } finally {
      await kernel.close();
    }
  });

  it("holds a blocked signal from outside pending until the program unblocks it, then ends it", async () => {
    const kernel = await Kernel.boot({ log: () => {} });
    try {
      const stdin = new PassThrough();
      const out = new Collector();
      // Not PID 1, which ignores signals it has no handler for (the next test).
      kernel.allocPid();
      const h = await kernel.spawn({ binary: blocked, argv: [blocked], env: [], stdin, stdout: out });
      await printed(out, "blocked\n");
      assert.deepEqual(h.signal(15, "SIGTERM"), { action: "pending" });
      stdin.write("go\n");
      const r = await h.wait();
      assert.equal(out.text(), "blocked\nterm pending 1\n");
      assert.equal(r.signal, "SIGTERM");
      assert.equal(r.waitStatus, 15);
    } finally {
      await kernel.close();
    }
  });

  it("PID 1 ignores a signal from outside it has no handler for, and SIGKILL still ends it", async () => {
    const kernel = await Kernel.boot({ log: () => {} });
    try {
      const out = new Collector();
      const h = await kernel.spawn({
        binary: spin,
        argv: [spin, "1"],
        env: [],
        stdin: new PassThrough(),
        stdout: out,
      });
      await printed(out, "spun\n");
      assert.equal(h.tgid, 1);
      for (const [sig, name] of [
        [2, "SIGINT"],
        [15, "SIGTERM"],
        [10, "SIGUSR1"],
        [20, "SIGTSTP"],
      ] as const)
        assert.deepEqual(h.signal(sig, name), { action: "ignore" }, name);
      assert.equal(h.usage().tasks, 1, "still running");
      assert.deepEqual(h.signal(9, "SIGKILL"), { action: "terminate", signal: 9 });
      assert.equal((await h.wait()).signal, "SIGKILL");
    } finally {
      await kernel.close();
    }
  });

  it("ends a process with a signal from outside and reports it in the wait status", async () => {
    const kernel = await Kernel.boot({ log: () => {} });
    try {
      const stdin = new PassThrough();
      const out = new Collector();
      kernel.allocPid();
      const h = await kernel.spawn({ binary: spin, argv: [spin, "1"], env: [], stdin, stdout: out });
      await printed(out, "spun\n");
      assert.deepEqual(h.signal(2, "SIGINT"), { action: "terminate", signal: 2 });
      const r = await h.wait();
      assert.equal(r.signal, "SIGINT");
      assert.equal(r.waitStatus, 2);
    } finally {
      await kernel.close();
    }
  });
});

describe("the pid namespace", { timeout: 120_000 }, () => {
  let bundle: BusyboxBundle;
  before(async () => {
    bundle = await busyboxBundle();
  });
  after(() => bundle.remove());

  it("gives each process its own pid, lists them all in /proc, and never reuses a pid", async () => {
    const kernel = await Kernel.boot({ rootfs: bundle.rootfs, log: () => {} });
    try {
      const spawn = (argv: string[], stdin?: PassThrough) => {
        const out = new Collector();
        return kernel
          .spawn({
            binary: argv[0]!,
            argv,
            env: BUSYBOX_ENV,
            stdout: out,
            stderr: out,
            ...(stdin ? { stdin } : {}),
          })
          .then((h) => ({ h, out }));
      };
      const first = new PassThrough();
      const a = await spawn(["sh", "-c", "read x"], first);
      const b = await spawn(["sh", "-c", "echo $$; cd /proc; echo [0-9]*"]);
      assert.equal(a.h.tgid, 1);
      assert.equal(b.h.tgid, 2);
      assert.equal((await b.h.wait()).code, 0, b.out.text());
      assert.equal(b.out.text(), "2\n1 2\n");
      const cat = await spawn(["cat", "/proc/1/cmdline", "/proc/self/stat"]);
      assert.equal((await cat.h.wait()).code, 0, cat.out.text());
      assert.match(cat.out.text(), /^sh\0-c\0read x\0(\d+) \(cat\) R 0 /);
      assert.equal(/\0(\d+) \(cat\)/.exec(cat.out.text())?.[1], "3");
      assert.deepEqual(kernel.pidns.tgids(), [1]);
      first.write("go\n");
      assert.equal((await a.h.wait()).code, 0);
      const c = await spawn(["sh", "-c", "echo $$; cd /proc; echo [0-9]*"]);
      assert.equal((await c.h.wait()).code, 0, c.out.text());
      // pid 1 ended, and 2 and 3 before it: the next process gets 4, and /proc lists only it.
      assert.equal(c.out.text(), "4\n4\n");
    } finally {
      await kernel.close();
    }
  });
});
