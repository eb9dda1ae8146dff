// busybox's ps, top, free, df and mount in a userkernel sandbox, as a user runs them: /proc
// lists the container's processes (an exec's ps sees the init too: they share the kernel),
// each mount appears once, and the memory figures add up (with and without --memory).
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Sandbox } from "../../src/sandbox/sandbox.js";
import type { Spec } from "../../src/spec/runtime.js";
import { UserkernelBackend } from "../../src/userkernel/sandbox.js";
import { Collector } from "../helpers/streams.js";
import { workdir } from "./helpers.js";
import { type BusyboxBundle, busyboxBundle } from "./rootfs-run.js";

describe("userkernel /proc for ps, top, free, df, mount", () => {
  let b: BusyboxBundle;
  let spec: Spec;
  let sandbox: Sandbox;
  let n = 0;
  let work: Awaited<ReturnType<typeof workdir>> | undefined;
  before(async () => {
    b = await busyboxBundle();
    mkdirSync(path.join(b.rootfs, "t"));
    work = await workdir();
    copyFileSync(await work.compile("budget"), path.join(b.rootfs, "t/budget"));
    spec = JSON.parse(readFileSync(path.join(b.base, "bundle", "config.json"), "utf8")) as Spec;
    sandbox = await new UserkernelBackend().createSandbox({ id: "uk-procfs", stateDir: b.base });
  });
  after(async () => {
    await sandbox?.destroy();
    await b?.remove();
    await work?.remove();
  });

  async function run(sb: Sandbox, args: string[]) {
    const id = `c${++n}`;
    const stdout = new Collector();
    const stderr = new Collector();
    await sb.create({
      id,
      bundle: path.join(b.base, "bundle"),
      spec: { ...spec, process: { ...spec.process!, args } },
      rootfs: b.rootfs,
      stdio: { stdout, stderr },
    });
    await sb.start(id);
    const st = await sb.wait(id);
    await sb.delete(id);
    return { status: st.status, out: stdout.text(), err: stderr.text() };
  }

  test("ps in an exec lists the init and itself with their pids; top -bn1 prints them", async () => {
    const id = "long";
    await sandbox.create({
      id,
      bundle: path.join(b.base, "bundle"),
      spec: { ...spec, process: { ...spec.process!, args: ["sleep", "100"] } },
      rootfs: b.rootfs,
      stdio: { stdout: new Collector(), stderr: new Collector(), stdin: new PassThrough() },
    });
    await sandbox.start(id);
    const exec = async (execId: string, args: string[]) => {
      const stdout = new Collector();
      const stderr = new Collector();
      await sandbox.exec({
        containerId: id,
        execId,
        process: { ...spec.process!, args },
        stdio: { stdout, stderr },
      });
      const st = await sandbox.wait(id, execId);
      return { status: st.status, out: stdout.text(), err: stderr.text() };
    };
    await sleep(200);
    const ps = await exec("ps", ["ps"]);
    assert.equal(ps.status, 0, ps.err);
    const rows = ps.out.trim().split("\n");
    assert.match(rows[0]!, /^PID\s+USER\s+(TIME\s+)?COMMAND/);
    assert.ok(
      rows.some((r) => /^\s*1\s+root\s+.*sleep 100$/.test(r)),
      `the init (pid 1) is listed:\n${ps.out}`,
    );
    assert.ok(
      rows.some((r) => /^\s*[2-9]\d*\s+root\s+.*\bps$/.test(r)),
      `ps itself is listed:\n${ps.out}`,
    );
    const top = await exec("top", ["top", "-bn1"]);
    assert.equal(top.status, 0, top.err);
    assert.doesNotMatch(top.out + top.err, /no process info/);
    assert.match(top.out, /^Mem: \d+K used, \d+K free/m);
    assert.match(top.out, /^CPU: /m);
    assert.match(top.out, /^Load average: /m);
    assert.match(top.out, /^\s*1\s+0\s+root\s+S\s+.*sleep 100/m);
    assert.match(top.out, /\btop -bn1\s*$/m);
    // The init's stat has proc(5)'s 52 fields, its name in parentheses.
    const stat = await exec("stat", ["cat", "/proc/1/stat", "/proc/self/status"]);
    const fields = stat.out.split("\n")[0]!.split(" ");
    assert.equal(fields.length, 52, stat.out);
    assert.deepEqual(fields.slice(0, 4), ["1", "(sleep)", "S", "0"]);
    assert.match(stat.out, /^Name:\tcat$/m);
    assert.match(stat.out, /^State:\tR \(running\)$/m);
    await sandbox.signal(id, "SIGKILL");
    await sandbox.wait(id);
    await sandbox.delete(id);
  });

  test("mount, /proc/self/mounts and df list each mount once", async () => {
    const m = await run(sandbox, ["mount"]);
    assert.equal(m.status, 0, m.err);
    const points = m.out
      .trim()
      .split("\n")
      .map((l) => l.split(" ")[2]);
    assert.deepEqual(points, [...new Set(points)], m.out);
    for (const p of ["/", "/proc", "/dev", "/dev/shm", "/tmp"])
      assert.ok(points.includes(p), `${p} in\n${m.out}`);
    // The config's /dev/shm (size=65536k) is the one left, with its options.
    assert.match(m.out, /^tmpfs on \/dev\/shm type tmpfs \(rw,nosuid,nodev,size=65536k\)$/m);
    const self = await run(sandbox, ["cat", "/proc/self/mounts", "/proc/self/mountinfo"]);
    const lines = self.out.trim().split("\n");
    const mounts = lines.filter((l) => !/^\d/.test(l));
    const info = lines.filter((l) => /^\d/.test(l));
    assert.equal(mounts.length, points.length);
    assert.equal(info.length, points.length);
    // mountinfo: id parent major:minor root point options - type source super-options
    for (const l of info) assert.match(l, /^\d+ \d+ \d+:\d+ \/ \S+ \S+ - \S+ \S+ (rw|ro)$/);
    const df = await run(sandbox, ["df"]);
    assert.equal(df.status, 0, df.err);
    const dfPoints = df.out
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => l.split(/\s+/).pop());
    assert.deepEqual(dfPoints, [...new Set(dfPoints)], df.out);
  });

  test("free: available never exceeds total; --memory is the total and a real budget", async () => {
    const free = await run(sandbox, ["free"]);
    assert.equal(free.status, 0, free.err);
    const mem = /^Mem:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(free.out);
    assert.ok(mem, free.out);
    const [total, , freeKb, , , avail] = mem.slice(1).map(Number) as number[];
    assert.ok(avail! <= total!, free.out);
    assert.ok(freeKb! <= total!, free.out);
    const hostTotal = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]);
    assert.equal(total, hostTotal, "without a budget, the host's total");

    const capped = await new UserkernelBackend().createSandbox({
      id: "uk-procfs-mem",
      stateDir: b.base,
      memoryMiB: 64,
    });
    try {
      const f = await run(capped, ["free"]);
      const m = /^Mem:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(f.out);
      assert.ok(m, f.out);
      const [t, used, fr, , , av] = m.slice(1).map(Number) as number[];
      assert.equal(t, 64 * 1024);
      assert.ok(used! > 0 && av! <= t! && fr! <= av!, f.out);
      const info = await run(capped, ["cat", "/proc/meminfo"]);
      assert.match(info.out, /^MemTotal:\s+65536 kB$/m);
      // The budget is real: mapping past it fails with ENOMEM (mmap and brk), and memory
      // given back can be mapped again.
      const r = await run(capped, ["/t/budget"]);
      assert.equal(r.status, 0, r.err);
      const got = Number(/^mapped (\d+) MiB, then Cannot allocate memory$/m.exec(r.out)?.[1]);
      assert.ok(got >= 32 && got < 64, r.out);
      assert.match(r.out, /^sbrk 64 MiB: Cannot allocate memory$/m);
      assert.match(r.out, /^after munmap: ok$/m);
      // Without a budget the same program maps far more.
      const free = await run(sandbox, ["/t/budget"]);
      assert.ok(Number(/^mapped (\d+) MiB/m.exec(free.out)?.[1]) > 1024, free.out);
    } finally {
      await capped.destroy();
    }
  });
});
