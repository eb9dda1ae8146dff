// Dynamically linked programs under the userkernel: C programs built by the test without
// -static and the host's own dynamic programs (env, ls, cat, sha256sum, python3), in a rootfs
// made of the host's binaries and the libraries ldd lists for them. Each runs natively and
// under the userkernel, and both must print the same. Also: the auxv ld.so gets, randomised
// load addresses, execve and #! scripts with dynamic interpreters, what still cannot run
// (126) or is not there (127), and the moat CLI running a dynamic program.
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { ExecError } from "../../src/userkernel/kernel/exec.js";
import type { RunOptions } from "../../src/userkernel/kernel/run.js";
import { buildDynamicRootfs } from "../helpers/dynamic-rootfs.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";
import { C_DIR, type Outcome } from "./helpers.js";
import { runIn } from "./rootfs-run.js";

after(cleanupTempDirs);

const ENV = ["GREETING=hi", "PATH=/usr/bin:/bin", "TZ=UTC", "LC_ALL=C"];
const PYLIB = "/usr/lib/python3.11";
const HOST_PROGRAMS = [
  "/usr/bin/env",
  "/usr/bin/ls",
  "/usr/bin/cat",
  "/usr/bin/sha256sum",
  "/usr/bin/python3",
  "/usr/bin/grep",
  "/usr/bin/sed",
  "/usr/bin/sort",
  "/usr/bin/bash",
  "/usr/bin/perl",
];

/** libgcc_s, which glibc itself dlopens (pthread_cancel, backtraces): wherever the host has it. */
function libgccS(): string {
  const found = ["/lib/x86_64-linux-gnu/libgcc_s.so.1", "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1"].find((p) =>
    existsSync(p),
  );
  assert.ok(found, "libgcc_s.so.1 is not where Debian keeps it on this host");
  return found;
}

function runNative(bin: string, args: string[], cwd?: string, input?: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(ENV.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
    const p = spawn(bin, args, { env, cwd, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on("data", (c: Buffer) => out.push(c));
    p.stderr.on("data", (c: Buffer) => err.push(c));
    p.on("error", reject);
    p.on("close", (code, signal) => {
      const o: Outcome = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (code !== null) o.code = code;
      if (signal !== null) o.signal = signal;
      resolve(o);
    });
    p.stdin.on("error", () => {});
    p.stdin.end(input);
  });
}

/** Under the userkernel in `rootfs`, with this file's environment (rootfs-run.ts's runIn). */
function runUser(
  rootfs: string,
  argv: string[],
  extra: Partial<RunOptions> & { input?: string } = {},
): Promise<Outcome & { log: string[] }> {
  return runIn(rootfs, argv, { env: ENV, ...extra });
}

describe("dynamic ELF programs under the userkernel", () => {
  let root: string;
  /** Compiled test programs: name -> host path (each also at /t/<name> in the rootfs). */
  const bins: Record<string, string> = {};
  const pythonMount = [{ destination: PYLIB, type: "bind", source: PYLIB, options: ["rbind", "ro"] }];

  before(async () => {
    const build = tempDir("userkernel-dyn-");
    const gcc = promisify(execFile);
    for (const [name, src, flags] of [
      ["dynamic", "dynamic", []],
      ["nopie", "dynamic", ["-no-pie"]],
      ["dlopen", "dlopen", []],
      ["bases", "bases", []],
      ["mmapfile", "mmapfile", []],
    ] as Array<[string, string, string[]]>) {
      bins[name] = path.join(build, name);
      await gcc("gcc", ["-O1", ...flags, "-o", bins[name]!, path.join(C_DIR, `${src}.c`)]);
    }
    // libm comes with python3's closure too; dlopen.c is not linked with it, so it is named here.
    root = buildDynamicRootfs(
      [...HOST_PROGRAMS, ...Object.values(bins)],
      [libgccS(), "/lib/x86_64-linux-gnu/libm.so.6"],
    );
    mkdirSync(path.join(root, "t"));
    for (const [name, p] of Object.entries(bins)) copyFileSync(p, path.join(root, "t", name));
    chmodSync(path.join(root, "t"), 0o755);
    for (const name of Object.keys(bins)) chmodSync(path.join(root, "t", name), 0o755);
    mkdirSync(path.join(root, PYLIB), { recursive: true });
    // A directory for ls -la and a file for cat and sha256sum, with fixed times.
    mkdirSync(path.join(root, "t/dir"));
    writeFileSync(path.join(root, "t/dir/data"), "some bytes\nto hash\n");
    writeFileSync(path.join(root, "t/dir/empty"), "");
    mkdirSync(path.join(root, "t/dir/sub"));
    chmodSync(path.join(root, "t/dir/empty"), 0o600);
    for (const p of ["t/dir/data", "t/dir/empty", "t/dir/sub", "t/dir"])
      utimesSync(path.join(root, p), 1700000000, 1700000000);
    // A file for mmapfile.c: 10000 bytes of a pattern.
    writeFileSync(
      path.join(root, "t/mapdata"),
      Buffer.from(Array.from({ length: 10000 }, (_, i) => (i * 7) % 251)),
    );
    // A #! script whose interpreter is a dynamic program.
    writeFileSync(path.join(root, "t/script"), "#!/usr/bin/cat -n\nline two\n", { mode: 0o755 });
    // A program whose ELF interpreter is not in the image (same length as the real one).
    const image = readFileSync(bins.dynamic!);
    const interp = image.indexOf("/lib64/ld-linux-x86-64.so.2\0");
    assert.ok(interp > 0);
    image.write("/lib64/ld-missing-x86-64.so", interp, "latin1");
    writeFileSync(path.join(root, "t/nointerp"), image, { mode: 0o755 });
    // A 32-bit ELF: really not runnable here.
    const c32 = readFileSync(bins.dynamic!);
    c32[4] = 1;
    writeFileSync(path.join(root, "t/elf32"), c32, { mode: 0o755 });
  });

  /** `name` (a compiled one) natively and in the rootfs: same status and stdout. */
  async function same(name: string, lines: string[], extra: Partial<RunOptions> = {}) {
    const native = await runNative(bins[name]!, []);
    const user = await runUser(root, [`/t/${name}`], extra);
    assert.equal(native.code, 0, native.stderr);
    assert.equal(user.code, 0, `${user.stderr}\n${user.log.slice(-20).join("\n")}`);
    assert.equal(user.stdout, native.stdout);
    for (const l of lines) assert.ok(user.stdout.includes(`${l}\n`), `missing "${l}" in:\n${user.stdout}`);
    return user;
  }

  test("a C program built without -static runs as natively; glibc makes real time syscalls without a vDSO", async () => {
    const user = await same(
      "dynamic",
      [
        "tls 42",
        "malloc ok x",
        "time ok 1",
        "uid 0 is root",
        "printf lives in /lib/x86_64-linux-gnu/libc.so.6",
      ],
      { debug: true },
    );
    // No AT_SYSINFO_EHDR: every clock read is a system call the kernel served.
    for (const call of ["clock_gettime", "gettimeofday", "time"])
      assert.ok(
        user.log.some((l) => /^\[\d+\] /.test(l) && l.includes(` ${call}(`) && / = 0x[0-9a-f]+$/.test(l)),
        `no ${call} syscall in the trace`,
      );
    // ld.so read the library through mmap of the file (and protected RELRO afterwards).
    assert.ok(user.log.some((l) => / mmap\(.*\) = 0x7/.test(l)));
    assert.ok(user.log.some((l) => / mprotect\(.*\) = 0x0$/.test(l)));
  });

  test("a non-PIE (ET_EXEC) program with an interpreter runs too", async () => {
    await same("nopie", ["tls 42", "sorted 1 3 5 7 9"]);
  });

  test("dlopen of libm and libgcc_s", async () => {
    await same("dlopen", [
      "cos(0.5) = 0.877583, sqrt(2) = 1.414214",
      "libgcc_s _Unwind_Backtrace found 1",
      "dlclose 0 0",
    ]);
  });

  test("the auxv ld.so gets: AT_BASE, AT_PHDR, AT_ENTRY, AT_PLATFORM, the host's HWCAPs, brk above the program", async () => {
    const a = await same("bases", [
      "objects 3",
      "at_base is ld.so 1",
      "at_phdr is the program's 1",
      "at_entry is _start 1",
      "at_platform x86_64",
      "at_pagesz 4096 at_clktck 100 at_secure 0",
      "brk above the program 1",
      "ld.so above the program 1",
    ]);
    // Randomised as Linux randomises them: the program, ld.so, the break and the stack move.
    const b = await runUser(root, ["/t/bases"]);
    const addrs = (s: string) => /addresses (.*)/.exec(s)?.[1]?.split(" ") ?? [];
    assert.equal(addrs(a.stderr).length, 4, a.stderr);
    for (const [i, v] of addrs(a.stderr).entries())
      assert.notEqual(addrs(b.stderr)[i], v, `${v} did not move`);
    // Without randomisation the same places every time.
    const f1 = await runUser(root, ["/t/bases"], { aslr: false });
    const f2 = await runUser(root, ["/t/bases"], { aslr: false });
    assert.equal(f1.stdout, a.stdout);
    assert.deepEqual(addrs(f1.stderr), addrs(f2.stderr));
  });

  test("mmap of files: whole pages of the file, zero past its end, private writes, shared read-only, PROT_EXEC", async () => {
    const native = await runNative(bins.mmapfile!, [path.join(root, "t/mapdata")]);
    const user = await runUser(root, ["/t/mmapfile", "/t/mapdata"]);
    assert.equal(native.code, 0, native.stderr);
    assert.deepEqual({ code: user.code, stdout: user.stdout }, { code: 0, stdout: native.stdout });
    for (const l of [
      "short map: 1 1 1 1",
      "offset map: 1 1, past the end zero 1",
      "private write: seen 1, file unchanged 1",
      "shared read-only: 1",
      "code from a file returns 42",
    ])
      assert.ok(user.stdout.includes(`${l}\n`), `missing "${l}" in:\n${user.stdout}`);
    // A writable shared mapping of a file maps its shared pages, as natively (EACCES without write access).
    const shared = await runUser(root, ["/t/mmapfile", "/t/mapdata", "shared-write"]);
    assert.equal(
      shared.stdout,
      "shared writable: mapped\nshared writable of a read-only descriptor: Permission denied\n",
    );
  });

  test("host programs: env, ls -la, cat, sha256sum, grep, sed, sort, bash and perl", async () => {
    const cases: Array<[string[], string | undefined]> = [
      [["/usr/bin/env"], undefined],
      [["/usr/bin/ls", "-la", "dir"], undefined],
      [["/usr/bin/ls", "-l", "--full-time", "dir/sub", "dir/data"], undefined],
      [["/usr/bin/cat", "dir/data", "-"], "and stdin\n"],
      [["/usr/bin/sha256sum", "dir/data", "-"], "from stdin\n"],
      [["/usr/bin/grep", "-n", "to", "dir/data"], undefined],
      [["/usr/bin/sed", "-e", "s/bytes/BYTES/", "dir/data"], undefined],
      [["/usr/bin/sort", "-r", "dir/data"], undefined],
      // Builtins only: a command of its own would need fork.
      [
        [
          "/usr/bin/bash",
          "-c",
          "echo $((6*7)); for i in a b; do printf '%s-' $i; done; cd dir && test -f data && echo data is here",
        ],
        undefined,
      ],
      [["/usr/bin/perl", "-e", "print join(',', map { $_ * $_ } 1..5), qq(\n)"], undefined],
    ];
    for (const [argv, input] of cases) {
      const native = await runNative(argv[0]!, argv.slice(1), path.join(root, "t"), input);
      const user = await runUser(root, argv, { cwd: "/t", ...(input !== undefined ? { input } : {}) });
      assert.equal(native.code, 0, native.stderr);
      assert.deepEqual(
        { code: user.code, stdout: user.stdout, stderr: user.stderr },
        { code: 0, stdout: native.stdout, stderr: "" },
        argv.join(" "),
      );
    }
  });

  test("python3 with its standard library bind-mounted", async () => {
    const code =
      "import json, hashlib, tempfile, os\n" +
      "print(sum(range(10)))\n" +
      "print(json.dumps({'a': [1, 2]}), hashlib.sha256(b'x').hexdigest())\n" +
      "with tempfile.TemporaryDirectory() as d:\n" +
      "    open(os.path.join(d, 'f'), 'w').write('hi')\n" +
      "    print(sorted(os.listdir(d)), os.path.getsize(os.path.join(d, 'f')))\n";
    const argv = ["/usr/bin/python3", "-c", code];
    const native = await runNative(argv[0]!, argv.slice(1));
    const user = await runUser(root, argv, { mounts: pythonMount });
    assert.equal(native.code, 0, native.stderr);
    assert.deepEqual(
      { code: user.code, stdout: user.stdout, stderr: user.stderr },
      {
        code: 0,
        stdout: native.stdout,
        stderr: "",
      },
    );
    assert.match(user.stdout, /^45\n/);
  });

  test("execve of a dynamic program, and #! scripts whose interpreter is dynamic", async () => {
    const viaEnv = await runUser(root, ["/usr/bin/env", "/usr/bin/cat", "/t/dir/data"]);
    assert.deepEqual([viaEnv.code, viaEnv.stdout], [0, "some bytes\nto hash\n"]);
    const script = await runUser(root, ["/t/script", "/t/dir/data"]);
    assert.deepEqual(
      [script.code, script.stdout],
      [0, "     1\t#!/usr/bin/cat -n\n     2\tline two\n     3\tsome bytes\n     4\tto hash\n"],
    );
    // ld.so run as the program (ET_DYN, no interpreter of its own) loads the one it is given.
    const ldso = await runUser(root, ["/lib64/ld-linux-x86-64.so.2", "/usr/bin/cat", "/t/dir/data"]);
    assert.deepEqual([ldso.code, ldso.stdout, ldso.stderr], [0, "some bytes\nto hash\n", ""]);
    const scriptViaEnv = await runUser(root, ["/usr/bin/env", "/t/script"]);
    assert.deepEqual(
      [scriptViaEnv.code, scriptViaEnv.stdout],
      [0, "     1\t#!/usr/bin/cat -n\n     2\tline two\n"],
    );
  });

  test("a missing ELF interpreter is 127 (ENOENT from execve); a 32-bit ELF is 126", async () => {
    await assert.rejects(runUser(root, ["/t/nointerp"]), (e: unknown) => {
      assert.ok(e instanceof ExecError, String(e));
      assert.equal(e.status, 127);
      assert.equal(
        e.brief,
        'exec: "/t/nointerp": no such file or directory (its ELF interpreter /lib64/ld-missing-x86-64.so)',
      );
      return true;
    });
    const viaEnv = await runUser(root, ["/usr/bin/env", "/t/nointerp"]);
    assert.equal(viaEnv.code, 127);
    assert.equal(viaEnv.stderr, "/usr/bin/env: '/t/nointerp': No such file or directory\n");
    await assert.rejects(runUser(root, ["/t/elf32"]), (e: unknown) => {
      assert.ok(e instanceof ExecError, String(e));
      assert.equal(e.status, 126);
      assert.match(e.brief, /exec format error \(not a 64-bit ELF file\)/);
      return true;
    });
    // execve says ENOEXEC (glibc's execvp then tries it as a shell script: this image has no sh).
    const elf32 = await runUser(root, ["/usr/bin/env", "/t/elf32"], { debug: true });
    assert.ok(
      elf32.log.some((l) => / execve\(.*\) = -ENOEXEC$/.test(l)),
      elf32.log.slice(-10).join("\n"),
    );
  });
});

describe("moat run --isolation userkernel of a dynamic program, the CLI", () => {
  const MAIN = new URL("../../src/cli/main.js", import.meta.url).pathname;

  test("a bundle of host programs runs ls and cat", () => {
    const bundle = tempDir("moat-dyn-bundle-");
    const rootfs = buildDynamicRootfs(["/usr/bin/ls", "/usr/bin/cat"]);
    const spec = {
      ociVersion: "1.1.0",
      process: { user: { uid: 0, gid: 0 }, args: ["ls", "/etc"], env: ["PATH=/usr/bin:/bin"], cwd: "/" },
      root: { path: rootfs },
      hostname: "dyn",
      mounts: [{ destination: "/proc", type: "proc", source: "proc" }],
    };
    writeFileSync(path.join(bundle, "config.json"), JSON.stringify(spec));
    const stateRoot = tempDir();
    const moat = (args: string[]) =>
      spawnSync(
        process.execPath,
        [MAIN, "--root", stateRoot, "run", "--isolation", "userkernel", "--rm", bundle, ...args],
        {
          encoding: "utf8",
          input: "",
        },
      );
    const ls = moat([]);
    assert.equal(ls.status, 0, ls.stderr);
    assert.equal(ls.stdout, "group\npasswd\n");
    const cat = moat(["cat", "/etc/group"]);
    assert.equal(cat.status, 0, cat.stderr);
    assert.equal(cat.stdout, readFileSync(path.join(rootfs, "etc/group"), "utf8"));
  });
});
