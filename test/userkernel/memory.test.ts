import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { KernelError } from "../../src/userkernel/errno.js";
import type { FileDescription } from "../../src/userkernel/kernel/fdtable.js";
import { FdTable } from "../../src/userkernel/kernel/fdtable.js";
import { FsContext } from "../../src/userkernel/kernel/fs-context.js";
import { PidNamespace } from "../../src/userkernel/kernel/pidns.js";
import { SignalHandlers } from "../../src/userkernel/kernel/signals-state.js";
import { type KernelInfo, newTask, type Task } from "../../src/userkernel/kernel/task.js";
import {
  AddressSpace,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
} from "../../src/userkernel/mm/addrspace.js";
import { fixedLayout } from "../../src/userkernel/mm/layout.js";
import { MemoryFile } from "../../src/userkernel/mm/memfile.js";
import { PtracePlatform } from "../../src/userkernel/platform/ptrace.js";
import { mmap } from "../../src/userkernel/syscalls/mm.js";
import { runNative, runUser, workdir } from "./helpers.js";

const RW = 3;
const anon = MAP_PRIVATE | MAP_ANONYMOUS;

function efault(f: () => unknown): void {
  assert.throws(f, (e: unknown) => e instanceof KernelError && e.code === "EFAULT");
}

/** The stub's own view of its mappings, as "start-end perms" lines. */
function hostMaps(pid: number): string[] {
  return readFileSync(`/proc/${pid}/maps`, "latin1")
    .trim()
    .split("\n")
    .filter((l) => !l.includes("moat-stub") && !l.includes("[vsyscall]"))
    .map((l) => l.split(/\s+/).slice(0, 2).join(" "));
}

describe("address space over a real stub", () => {
  const mem = new MemoryFile(2 ** 30);
  const platform = PtracePlatform.start(mem.fd);
  const mm = new AddressSpace(mem, platform, platform.reserved, fixedLayout());
  after(() => {
    platform.kill();
    mem.close();
  });

  it("mirrors mmap, mprotect and munmap into the host process", () => {
    const a = mm.mapAnonymous(0, 5 * 4096, RW, anon);
    assert.equal(a % 4096, 0);
    assert.ok(a + 5 * 4096 <= fixedLayout().mmapBase);
    mm.mprotect(a + 4096, 4096, 1);
    const hex = (n: number) => n.toString(16).padStart(8, "0");
    assert.deepEqual(
      hostMaps(platform.hostPid).filter((l) => l >= hex(a) && l < hex(a + 5 * 4096)),
      [
        `${hex(a)}-${hex(a + 4096)} rw-s`,
        `${hex(a + 4096)}-${hex(a + 8192)} r--s`,
        `${hex(a + 8192)}-${hex(a + 5 * 4096)} rw-s`,
      ],
    );
    mm.munmap(a, 5 * 4096);
    assert.equal(hostMaps(platform.hostPid).filter((l) => l.startsWith(hex(a))).length, 0);
    assert.equal(mm.find(a), undefined);
  });

  it("copies in and out through the memory file and faults on unmapped or forbidden memory", () => {
    const a = mm.mapAnonymous(0x10000000, 2 * 4096, RW, anon | MAP_FIXED);
    mm.write(a + 4090, Buffer.from("across a page"));
    assert.equal(mm.read(a + 4090, 13).toString(), "across a page");
    mm.write(a + 100, Buffer.from("zero-terminated\0rest"));
    assert.equal(mm.readCString(a + 100), "zero-terminated");
    mm.writeU64(a + 200, 0x1122334455667788n);
    assert.equal(mm.readU64(a + 200), 0x1122334455667788n);
    efault(() => mm.read(a + 2 * 4096 - 4, 8));
    efault(() => mm.read(0x20000000, 1));
    efault(() => mm.read(2 ** 60, 1));
    mm.mprotect(a, 4096, 1);
    efault(() => mm.write(a, Buffer.from("x")));
    mm.write(a, Buffer.from("x"), "force");
    mm.mprotect(a, 4096, 0);
    efault(() => mm.read(a, 1));
    mm.munmap(a, 2 * 4096);
  });

  it("gives back memory-file space and zeroes it for the next user", () => {
    const before = mem.allocated;
    const a = mm.mapAnonymous(0, 64 * 4096, RW, anon);
    mm.write(a, Buffer.alloc(64 * 4096, 0xee));
    assert.equal(mem.allocated, before + 64 * 4096);
    mm.munmap(a, 64 * 4096);
    assert.equal(mem.allocated, before);
    const b = mm.mapAnonymous(0, 64 * 4096, RW, anon);
    assert.ok(mm.read(b, 64 * 4096).every((x) => x === 0));
    mm.madvise(b, 4096, 4);
    mm.munmap(b, 64 * 4096);
  });

  it("moves with mremap without copying and keeps the contents", () => {
    const a = mm.mapAnonymous(0, 4096, RW, anon);
    const blocker = mm.mapAnonymous(a + 4096, 4096, RW, anon | MAP_FIXED);
    mm.write(a, Buffer.from("payload"));
    const before = mem.allocated;
    const b = mm.mremap(a, 4096, 3 * 4096, 1, 0);
    assert.notEqual(b, a);
    assert.equal(mm.read(b, 7).toString(), "payload");
    assert.equal(mem.allocated, before + 2 * 4096);
    assert.equal(mm.find(a), undefined);
    mm.munmap(b, 3 * 4096);
    mm.munmap(blocker, 4096);
  });

  it("never hands out the platform's reserved range", () => {
    const r = platform.reserved[0]!;
    assert.throws(() => mm.mapAnonymous(r.start, 4096, RW, anon | MAP_FIXED), /ENOMEM/);
  });
});

describe("memory syscalls under the userkernel", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = await w.compile("memory");
  });
  after(() => w.remove());

  it("malloc, mmap, mprotect, mremap, madvise and brk behave as natively", async () => {
    const native = await runNative(bin);
    const user = await runUser(bin);
    assert.equal(native.code, 0, native.stderr);
    assert.equal(user.code, 0, user.stderr);
    assert.equal(user.stdout, native.stdout);
    assert.match(user.stdout, /sbrk shrink 1/);
  });
});

describe("file mappings", () => {
  const mem = new MemoryFile(2 ** 30);
  const platform = PtracePlatform.start(mem.fd);
  const space = new AddressSpace(mem, platform, platform.reserved, fixedLayout());
  const info: KernelInfo = {
    hostname: "t",
    domainname: "(none)",
    bootRealtimeNs: 0n,
    bootHrtimeNs: 0n,
    unimplemented: new Map(),
    log: () => {},
    debug: false,
  };
  const task = newTask({
    kernel: info,
    pidns: new PidNamespace<Task>(),
    group: { fresh: { exe: "t", cmdline: ["t"] } },
    cpu: platform.cpu,
    ctx: platform.context,
    mm: { fresh: space },
    fds: { fresh: new FdTable() },
    fs: { fresh: new FsContext(undefined, undefined, undefined, 0o022) },
    sighand: { fresh: new SignalHandlers() },
    creds: { uid: 0, euid: 0, suid: 0, gid: 0, egid: 0, sgid: 0 },
    groups: [],
    comm: "t",
  });
  after(() => {
    platform.kill();
    mem.close();
  });

  /** A readable file whose bytes are `data` (what the VFS's regular files provide). */
  function file(data: Buffer, flags = 0): FileDescription {
    return {
      flags,
      pread(dst: Uint8Array, offset: number) {
        const n = Math.max(0, Math.min(dst.length, data.length - offset));
        dst.set(data.subarray(offset, offset + n));
        return n;
      },
      stat: () => ({
        mode: 0o100644,
        size: data.length,
        ino: 1,
        dev: 1,
        rdev: 0,
        nlink: 1,
        uid: 0,
        gid: 0,
        blksize: 4096,
      }),
    };
  }
  /** The handler's result as the dispatcher returns it to the program (-errno on failure). */
  const call = async (...args: Array<number | bigint>): Promise<bigint> => {
    try {
      return BigInt(
        (await mmap(
          task,
          args.map((a) => BigInt.asUintN(64, BigInt(a))),
        )) as number | bigint,
      );
    } catch (e) {
      if (e instanceof KernelError) return BigInt.asUintN(64, BigInt(-e.errno));
      throw e;
    }
  };

  it("copies the file's bytes from the offset, zero-fills past its end, and keeps the protection", async () => {
    const data = Buffer.alloc(3 * 4096 + 100);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    const fd = task.fds.install(file(data));
    const at = Number(await call(0, 4 * 4096, 1, MAP_PRIVATE, fd, 4096));
    assert.ok(space.read(at, 2 * 4096 + 100).equals(data.subarray(4096)));
    assert.ok(space.read(at + 2 * 4096 + 100, 4096 * 2 - 100).every((b) => b === 0));
    assert.equal(space.find(at)!.prot, 1);
    efault(() => space.write(at, Buffer.from("x")));
    space.munmap(at, 4 * 4096);
  });

  it("refuses what a copy cannot honour, and bad arguments, as Linux does", async () => {
    const fd = task.fds.install(file(Buffer.alloc(4096)));
    const wo = task.fds.install(file(Buffer.alloc(4096), 1));
    const rw = task.fds.install(file(Buffer.alloc(4096), 2));
    assert.equal(await call(0, 4096, 3, MAP_SHARED, rw, 0), BigInt.asUintN(64, -19n)); // ENODEV
    // Linux checks the descriptor's access mode first (the files test compares with it).
    assert.equal(await call(0, 4096, 3, MAP_SHARED, fd, 0), BigInt.asUintN(64, -13n)); // EACCES
    assert.equal(await call(0, 4096, 1, MAP_PRIVATE, wo, 0), BigInt.asUintN(64, -13n)); // EACCES
    assert.equal(await call(0, 4096, 1, MAP_PRIVATE, 99, 0), BigInt.asUintN(64, -9n)); // EBADF
    assert.equal(await call(0, 4096, 1, MAP_PRIVATE, fd, 100), BigInt.asUintN(64, -22n)); // EINVAL
    // A read-only shared mapping is served as a copy.
    const at = await call(0, 4096, 1, MAP_SHARED, fd, 0);
    assert.ok(at < 2n ** 47n);
  });
});
