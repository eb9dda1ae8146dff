import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { processVmRead, processVmWrite } from "../../src/sys/mman.js";
import { MemoryFile } from "../../src/userkernel/mm/memfile.js";
import { PtracePlatform, STUB_MEMFD } from "../../src/userkernel/platform/ptrace.js";
import { STUB_BASE, STUB_GADGET, stubElf } from "../../src/userkernel/platform/stub.js";
import { alive } from "./helpers.js";

const NR_GETPID = 39;

async function waitDead(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!(await alive(pid))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !(await alive(pid));
}

describe("stub", () => {
  it("is a small ELF64 executable for x86-64 linked at the stub base", () => {
    const b = stubElf(process.pid);
    assert.equal(b.readUInt32BE(0), 0x7f454c46);
    assert.equal(b[4], 2);
    assert.equal(b.readUInt16LE(18), 62);
    assert.ok(b.length < 512, `stub is ${b.length} bytes`);
    assert.ok(STUB_GADGET > STUB_BASE && STUB_GADGET < STUB_BASE + b.length);
  });
});

describe("ptrace platform", () => {
  const mem = new MemoryFile(2 ** 30);
  const started: PtracePlatform[] = [];
  after(() => {
    for (const p of started) p.kill();
    mem.close();
  });

  it("starts a stub that the host accepts, that stops itself and is traced by us", () => {
    const p = PtracePlatform.start(mem.fd);
    started.push(p);
    const status = readFileSync(`/proc/${p.hostPid}/status`, "latin1");
    assert.match(status, /^State:\s+t \(tracing stop\)/m);
    assert.match(status, new RegExp(`^TracerPid:\\s+${process.pid}$`, "m"));
    // The host's stack, vdso and vvar are gone: only the stub page (and vsyscall) remain.
    const maps = readFileSync(`/proc/${p.hostPid}/maps`, "latin1").trim().split("\n");
    const user = maps.filter((l) => !l.includes("[vsyscall]"));
    assert.equal(user.length, 1, maps.join("\n"));
    assert.ok(user[0]!.startsWith(STUB_BASE.toString(16)));
    // It runs moat's generated stub, from a memfd: nothing on disk.
    assert.match(readlinkSync(`/proc/${p.hostPid}/exe`), /^\/memfd:moat-stub/);
    // The memory file is the stub's descriptor 3 and its only other descriptors are /dev/null.
    assert.deepEqual(readdirSync(`/proc/${p.hostPid}/fd`).sort(), ["0", "1", "2", String(STUB_MEMFD)]);
    assert.match(readlinkSync(`/proc/${p.hostPid}/fd/${STUB_MEMFD}`), /^\/memfd:moat-memory/);
    assert.equal(readlinkSync(`/proc/${p.hostPid}/fd/1`), "/dev/null");
  });

  it("runs injected system calls inside the stub", () => {
    const p = PtracePlatform.start(mem.fd);
    started.push(p);
    assert.equal(p.inject(NR_GETPID, []), BigInt(p.hostPid));
    const off = mem.alloc(0x3000);
    p.map(0x200000, 0x3000, 3, off);
    let maps = readFileSync(`/proc/${p.hostPid}/maps`, "latin1");
    assert.match(maps, /^00200000-00203000 rw-s /m);
    p.protect(0x201000, 0x1000, 1);
    maps = readFileSync(`/proc/${p.hostPid}/maps`, "latin1");
    assert.match(maps, /^00201000-00202000 r--s /m);
    p.unmap(0x200000, 0x3000);
    maps = readFileSync(`/proc/${p.hostPid}/maps`, "latin1");
    assert.doesNotMatch(maps, /^00200000/m);
    // A failing injected call reports the host's error instead of pretending.
    assert.throws(() => p.map(0x200001, 0x1000, 3, off), /EINVAL/);
    mem.release(off, 0x3000);
  });

  it("shares memory-file pages with the stub; process_vm_readv/writev see the same bytes", () => {
    const p = PtracePlatform.start(mem.fd);
    started.push(p);
    const off = mem.alloc(0x1000);
    p.map(0x300000, 0x1000, 3, off);
    mem.spans(off, 5, (b) => b.set(Buffer.from("hello")));
    const into = Buffer.alloc(5);
    assert.equal(processVmRead(p.hostPid, 0x300000n, into), 5);
    assert.equal(into.toString(), "hello");
    assert.equal(processVmWrite(p.hostPid, 0x300001n, Buffer.from("EL")), 2);
    let seen = "";
    mem.spans(off, 5, (b) => {
      seen = Buffer.from(b).toString();
    });
    assert.equal(seen, "hELlo");
    p.unmap(0x300000, 0x1000);
    mem.release(off, 0x1000);
  });

  it("kill() leaves no stub behind", async () => {
    const p = PtracePlatform.start(mem.fd);
    const pid = p.hostPid;
    assert.ok(await alive(pid));
    p.kill();
    assert.equal(await waitDead(pid, 2000), true);
    p.kill(); // idempotent
  });

  it("a killed kernel process leaves no stub behind", async () => {
    const script = fileURLToPath(new URL("./fixtures/hold-stub.js", import.meta.url));
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, MOAT_HOLD_STUB: "1" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let buf = "";
        child.stdout.on("data", (c: Buffer) => {
          buf += c.toString();
          if (buf.includes("\n")) resolve(buf.trim());
        });
        child.on("exit", () => reject(new Error("kernel process exited early")));
      });
      const stubPid = Number(line);
      assert.ok(stubPid > 0);
      assert.ok(await alive(stubPid), "stub runs while its kernel does");
      child.kill("SIGKILL");
      assert.equal(await waitDead(stubPid, 5000), true, "stub survived its kernel");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
