import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { PassThrough, Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { isMoatError } from "../../src/spec/errors.js";
import { runStatic } from "../../src/userkernel/kernel/run.js";
import { alive, runNative, runUser, workdir } from "./helpers.js";

describe("runStatic", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  const bins: Record<string, string> = {};
  before(async () => {
    w = await workdir();
    for (const n of ["hello", "cat", "fault"]) bins[n] = await w.compile(n);
  });
  after(() => w.remove());

  it("runs a static C hello world and prints what it prints natively", async () => {
    const native = await runNative(bins.hello!, ["0", "two words"]);
    const user = await runUser(bins.hello!, ["0", "two words"]);
    assert.equal(native.code, 0);
    assert.equal(user.code, 0);
    assert.equal(user.stdout, native.stdout.replaceAll(bins.hello!, bins.hello!));
    assert.match(user.stdout, /GREETING=hi/);
    assert.equal(user.stderr, native.stderr);
  });

  it("passes the exit code through", async () => {
    const native = await runNative(bins.hello!, ["3"]);
    const user = await runUser(bins.hello!, ["3"]);
    assert.equal(native.code, 3);
    assert.equal(user.code, 3);
    assert.equal(user.signal, undefined);
  });

  it("reads stdin through read(2)", async () => {
    const input = Buffer.alloc(100_000);
    for (let i = 0; i < input.length; i++) input[i] = (i * 7919) & 0xff;
    const stdin = new PassThrough();
    // Feed in pieces, some after the program started waiting, to exercise the wakeups.
    setTimeout(() => {
      stdin.write(input.subarray(0, 30_000));
      setTimeout(() => stdin.end(input.subarray(30_000)), 20);
    }, 20);
    const chunks: Buffer[] = [];
    const stdout = new PassThrough();
    stdout.on("data", (c: Buffer) => chunks.push(c));
    const r = await runStatic({ binary: bins.cat!, argv: ["cat"], env: [], stdin, stdout, log: () => {} });
    assert.equal(r.code, 0);
    assert.ok(Buffer.concat(chunks).equals(input));
  });

  it("reports a fault as death by signal and leaves no stub", async () => {
    let stub = 0;
    const user = await runUser(bins.fault!, [], { onStart: ({ hostPid }) => (stub = hostPid) });
    assert.equal(user.signal, "SIGSEGV");
    assert.equal(user.code, undefined);
    assert.equal(user.stdout, "before\n");
    assert.ok(stub > 0);
    assert.equal(await alive(stub), false);
  });

  it("leaves no stub and no memory file after a normal exit", async () => {
    const memfds = () =>
      readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith("/memfd:moat-memory");
        } catch {
          return false;
        }
      }).length;
    const mappings = () => readFileSync("/proc/self/maps", "latin1").split("moat-memory").length - 1;
    let stub = 0;
    let during = 0;
    await runUser(bins.hello!, [], {
      onStart: ({ hostPid }) => {
        stub = hostPid;
        during = memfds();
      },
    });
    assert.ok(stub > 0);
    assert.equal(during, 1, "the run holds its memory file while it lasts");
    assert.equal(await alive(stub), false);
    assert.equal(memfds(), 0);
    assert.equal(mappings(), 0);
  });

  it("refuses a dynamically linked binary with a clear error", async () => {
    const dyn = `${w.dir}/dyn`;
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const { C_DIR } = await import("./helpers.js");
    await promisify(execFile)("gcc", ["-O1", "-o", dyn, `${C_DIR}hello.c`]);
    await assert.rejects(
      runStatic({ binary: dyn, argv: ["dyn"], env: [], log: () => {} }),
      (e: unknown) =>
        isMoatError(e, "ENOTSUP") &&
        /dynamically linked/.test((e as Error).message) &&
        /-static/.test((e as Error).message),
    );
  });

  it("refuses a file that is not an executable", async () => {
    await assert.rejects(
      runStatic({ binary: Buffer.from("#!/bin/sh\necho hi\n"), argv: ["x"], env: [], log: () => {} }),
      (e: unknown) => isMoatError(e, "ENOTSUP") && /not an ELF/.test((e as Error).message),
    );
  });

  it("runs busybox echo (Debian busybox-static)", async () => {
    assert.ok(existsSync("/bin/busybox"), "install the busybox-static package");
    const user = await runUser("/bin/busybox", ["echo", "hello"]);
    assert.equal(user.stdout, "hello\n");
    assert.equal(user.code, 0);
  });

  it("runs busybox applets that need no files exactly as natively", async () => {
    const input = Buffer.from("moat\nuserkernel\n".repeat(1000));
    for (const args of [
      ["md5sum"],
      ["wc", "-l"],
      ["seq", "2", "4"],
      ["expr", "6", "*", "7"],
      ["printf", "%s=%d\\n", "x", "5"],
    ]) {
      const native = await runNative("/bin/busybox", args, input);
      const user = await runUser("/bin/busybox", args, { stdin: Readable.from([input]) });
      assert.equal(user.stdout, native.stdout, args.join(" "));
      assert.equal(user.code, native.code, args.join(" "));
    }
  });
});

describe("runStatic abort", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let cat = "";
  before(async () => {
    w = await workdir();
    cat = await w.compile("cat");
  });
  after(() => w.remove());

  it("kills a program blocked in the kernel and leaves no stub", async () => {
    const stdin = new PassThrough(); // never written: cat waits in read(0) forever
    const ac = new AbortController();
    let stub = 0;
    const run = runStatic({
      binary: cat,
      argv: ["cat"],
      env: [],
      stdin,
      stdout: new PassThrough(),
      log: () => {},
      signal: ac.signal,
      onStart: ({ hostPid }) => (stub = hostPid),
    });
    setTimeout(() => ac.abort(), 200);
    const r = await run;
    assert.equal(r.signal, "SIGKILL");
    assert.ok(stub > 0);
    assert.equal(await alive(stub), false);
  });
});

describe("signals a program sends itself", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("selfsig");
  });
  after(() => w.remove());

  for (const mode of ["ign", "term", "abort"]) {
    it(`behave as natively: ${mode}`, async () => {
      const native = await runNative(bin, [mode]);
      const user = await runUser(bin, [mode]);
      assert.equal(user.stdout, native.stdout);
      assert.equal(user.code, native.code);
      assert.equal(user.signal, native.signal ?? undefined);
    });
  }
});
