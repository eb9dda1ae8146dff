import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { KernelError } from "../../src/userkernel/errno.js";
import { ET_DYN, ET_EXEC, parseElf } from "../../src/userkernel/loader/elf.js";
import { loadElf, loadStatic } from "../../src/userkernel/loader/load.js";
import {
  AT_BASE,
  AT_ENTRY,
  AT_EXECFN,
  AT_NULL,
  AT_PAGESZ,
  AT_PHDR,
  AT_PHENT,
  AT_PHNUM,
  AT_PLATFORM,
  AT_RANDOM,
} from "../../src/userkernel/loader/stack.js";
import { AddressSpace } from "../../src/userkernel/mm/addrspace.js";
import { randomLayout } from "../../src/userkernel/mm/layout.js";
import { MemoryFile } from "../../src/userkernel/mm/memfile.js";
import { PtracePlatform } from "../../src/userkernel/platform/ptrace.js";
import { C_DIR, runNative, runUser, workdir } from "./helpers.js";

function enoexec(f: () => unknown, re: RegExp): void {
  assert.throws(f, (e: unknown) => e instanceof KernelError && e.code === "ENOEXEC" && re.test(e.message));
}

describe("ELF parsing", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let image: Buffer;
  before(async () => {
    w = await workdir();
    image = await readFile(await w.compile("hello"));
  });
  after(() => w.remove());

  it("reads a static executable", () => {
    const elf = parseElf(image);
    assert.equal(elf.type, ET_EXEC);
    assert.equal(elf.interp, undefined);
    assert.ok(elf.tls, "static glibc binaries carry PT_TLS");
    assert.equal(elf.execStack, false);
  });

  it("rejects what is not a loadable x86-64 ELF64", () => {
    enoexec(() => parseElf(Buffer.from("#!/bin/sh\n")), /not an ELF/);
    enoexec(() => parseElf(image.subarray(0, 40)), /not an ELF/);
    const c32 = Buffer.from(image);
    c32[4] = 1;
    enoexec(() => parseElf(c32), /64-bit/);
    const arm = Buffer.from(image);
    arm.writeUInt16LE(183, 18);
    enoexec(() => parseElf(arm), /x86-64/);
    const many = Buffer.from(image);
    many.writeUInt16LE(60000, 56);
    enoexec(() => parseElf(many), /program header/);
    // A segment claiming file bytes past the end of the file.
    const bad = Buffer.from(image);
    const elf = parseElf(image);
    const i = elf.phdrs.findIndex((p) => p.type === 1);
    bad.writeBigUInt64LE(BigInt(image.length + 4096), elf.phoff + i * 56 + 32);
    bad.writeBigUInt64LE(BigInt(image.length + 4096), elf.phoff + i * 56 + 40);
    enoexec(() => parseElf(bad), /beyond the end/);
  });
});

describe("loading and the initial stack", () => {
  const mem = new MemoryFile(2 ** 30);
  const platform = PtracePlatform.start(mem.fd);
  const layout = randomLayout();
  const mm = new AddressSpace(mem, platform, platform.reserved, layout);
  let w: Awaited<ReturnType<typeof workdir>>;
  let image: Buffer;
  before(async () => {
    w = await workdir();
    image = await readFile(await w.compile("hello"));
  });
  after(async () => {
    platform.kill();
    mem.close();
    await w.remove();
  });

  it("lays out argc, argv, envp and auxv as Linux does", () => {
    const random = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    const loaded = loadStatic(mm, {
      image,
      layout,
      argv: ["prog", "a b", ""],
      env: ["X=1", "EMPTY="],
      execfn: "/bin/prog",
      uid: 0,
      euid: 0,
      gid: 0,
      egid: 0,
      random,
    });
    const elf = parseElf(image);
    assert.equal(loaded.sp % 16, 0);
    assert.ok(loaded.sp < layout.stackTop && loaded.sp > layout.stackTop - 65536);
    let at = loaded.sp;
    const word = () => {
      const v = mm.readU64(at);
      at += 8;
      return v;
    };
    assert.equal(word(), 3n);
    const argv = [word(), word(), word()].map((p) => mm.readCString(Number(p)));
    assert.deepEqual(argv, ["prog", "a b", ""]);
    assert.equal(word(), 0n);
    const env = [word(), word()].map((p) => mm.readCString(Number(p)));
    assert.deepEqual(env, ["X=1", "EMPTY="]);
    assert.equal(word(), 0n);
    const aux = new Map<number, bigint>();
    for (;;) {
      const k = Number(word());
      const v = word();
      if (k === AT_NULL) break;
      assert.equal(aux.has(k), false, `auxv key ${k} twice`);
      aux.set(k, v);
    }
    assert.equal(aux.get(AT_PAGESZ), 4096n);
    assert.equal(aux.get(AT_PHENT), 56n);
    assert.equal(aux.get(AT_PHNUM), BigInt(elf.phnum));
    assert.equal(aux.get(AT_ENTRY), BigInt(elf.entry));
    assert.equal(mm.readCString(Number(aux.get(AT_PLATFORM))), "x86_64");
    assert.equal(mm.readCString(Number(aux.get(AT_EXECFN))), "/bin/prog");
    assert.deepEqual([...mm.read(Number(aux.get(AT_RANDOM)), 16)], [...random]);
    // AT_PHDR points at the program headers as loaded: the first one matches the file's.
    const phdr = Number(aux.get(AT_PHDR));
    assert.ok(mm.read(phdr, 56).equals(image.subarray(elf.phoff, elf.phoff + 56)));
    // Segments hold the file's bytes; the bss is zero; the break starts after the image.
    const text = elf.phdrs.find((p) => p.type === 1 && p.flags & 1)!;
    assert.ok(mm.read(text.vaddr, 64, "force").equals(image.subarray(text.offset, text.offset + 64)));
    const data = elf.phdrs.filter((p) => p.type === 1).at(-1)!;
    if (data.memsz > data.filesz)
      assert.ok(mm.read(data.vaddr + data.filesz, data.memsz - data.filesz).every((b) => b === 0));
    assert.equal(loaded.brk % 4096, 0);
    assert.ok(loaded.brk >= data.vaddr + data.memsz + layout.brkOffset);
    assert.equal(mm.brkStart, loaded.brk);
  });
});

describe("static-pie", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  before(async () => {
    w = await workdir();
  });
  after(() => w.remove());

  it("loads a position-independent static executable at the ET_DYN base and runs it", async () => {
    const bin = `${w.dir}/hello-pie`;
    await promisify(execFile)("gcc", ["-static-pie", "-O1", "-o", bin, `${C_DIR}hello.c`]);
    assert.equal(parseElf(await readFile(bin)).type, ET_DYN);
    const native = await runNative(bin, ["5"]);
    const user = await runUser(bin, ["5"]);
    assert.equal(user.code, 5);
    assert.equal(user.stdout, native.stdout);
  });
});

describe("address-space layout", () => {
  let w: Awaited<ReturnType<typeof workdir>>;
  let bin = "";
  before(async () => {
    w = await workdir();
    bin = `${w.dir}/aslr`;
    await promisify(execFile)("gcc", ["-static-pie", "-O1", "-o", bin, `${C_DIR}aslr.c`]);
  });
  after(() => w.remove());

  const where = async (aslr: boolean) => {
    const r = await runUser(bin, [], { aslr });
    assert.equal(r.code, 0, r.stderr);
    return Object.fromEntries(
      r.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" ") as [string, string]),
    );
  };

  it("is randomised like the host's: stack, break, mmap area and PIE base all move", async () => {
    const a = await where(true);
    const b = await where(true);
    for (const k of ["stack", "brk", "mmap", "code"]) assert.notEqual(a[k], b[k], `${k} did not move`);
  });

  it("puts the break anywhere in the GiB above the program, as the host does for 64-bit programs", () => {
    // One draw below 32 MiB is likely (1 in 32); forty in a row, never (2^-200).
    const offsets = Array.from({ length: 40 }, () => randomLayout().brkOffset);
    assert.ok(Math.max(...offsets) >= 32 * 2 ** 20, "the break never moved beyond 32 MiB");
    assert.ok(Math.max(...offsets) < 2 ** 30);
    assert.ok(offsets.every((o) => o % 4096 === 0));
  });

  it("is fixed without ASLR, at the host's non-random addresses", async () => {
    const a = await where(false);
    const b = await where(false);
    assert.deepEqual(a, b);
    assert.match(a.code!, /^0x5555555/);
    assert.match(a.stack!, /^0x7fffffff/);
  });
});

describe("a dynamic program and its interpreter", () => {
  const mem = new MemoryFile(2 ** 30);
  const platform = PtracePlatform.start(mem.fd);
  const layout = randomLayout();
  const mm = new AddressSpace(mem, platform, platform.reserved, layout);
  const LDSO = "/lib64/ld-linux-x86-64.so.2";
  let w: Awaited<ReturnType<typeof workdir>>;
  let image: Buffer;
  let ldso: Buffer;
  before(async () => {
    w = await workdir();
    await promisify(execFile)("gcc", ["-O1", "-o", `${w.dir}/dyn`, `${C_DIR}hello.c`]);
    image = await readFile(`${w.dir}/dyn`);
    ldso = await readFile(LDSO);
  });
  after(async () => {
    platform.kill();
    mem.close();
    await w.remove();
  });

  const request = (interp?: { image: Buffer; path: string }) => ({
    image,
    interp,
    path: "/t/dyn",
    layout,
    argv: ["dyn"],
    env: [],
    execfn: "dyn",
    uid: 0,
    euid: 0,
    gid: 0,
    egid: 0,
  });

  it("is refused without its interpreter", () => {
    enoexec(
      () => loadElf(mm, request()),
      /dynamically linked \(interpreter \/lib64\/ld-linux-x86-64\.so\.2\)/,
    );
  });

  it("loads ld.so in the mmap area, starts there, and tells it where it is (AT_BASE)", () => {
    const elf = parseElf(image);
    const ld = parseElf(ldso);
    assert.equal(elf.interp, LDSO);
    assert.equal(ld.type, ET_DYN);
    const loaded = loadElf(mm, request({ image: ldso, path: LDSO }));
    const base = loaded.interpBase!;
    assert.equal(base % 4096, 0);
    assert.ok(base < layout.mmapBase && base > layout.pieBase, "ld.so sits below the mmap base");
    assert.equal(loaded.entry, ld.entry + base, "execution starts in ld.so");
    assert.equal(loaded.bias, layout.pieBase);
    // ld.so's first segment holds its ELF header, as the file has it.
    assert.ok(mm.read(base, 64, "force").equals(ldso.subarray(0, 64)));
    // The break follows the program, not the interpreter.
    assert.ok(loaded.brk >= layout.pieBase && loaded.brk < base);
    // The auxv: AT_BASE is ld.so, AT_ENTRY the program's own entry point.
    let at = loaded.sp + 8 * 4; // argc, argv[0], NULL, (no env) NULL
    const aux = new Map<number, bigint>();
    for (;;) {
      const k = Number(mm.readU64(at));
      const v = mm.readU64(at + 8);
      at += 16;
      if (k === AT_NULL) break;
      aux.set(k, v);
    }
    assert.equal(aux.get(AT_BASE), BigInt(base));
    assert.equal(aux.get(AT_ENTRY), BigInt(elf.entry + loaded.bias));
    // Each mapping is named for /proc/pid/maps: the program's path, ld.so's, the stack.
    const names = new Set(mm.list().map((v) => v.name));
    for (const n of ["/t/dyn", LDSO, "[stack]"]) assert.ok(names.has(n), `no mapping named ${n}`);
    const exec = mm.list().filter((v) => v.prot & 4);
    assert.deepEqual(exec.map((v) => v.name).sort(), ["/t/dyn", LDSO].sort(), "code of both is executable");
  });
});
