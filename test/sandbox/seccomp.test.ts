// Compiled seccomp profiles, loaded for real: the guest's moat-creds (compiled here for the
// host) loads the BPF program moat compiles and runs a probe that makes system calls with
// chosen arguments, so every comparison operator, the default action and the ABI check are
// checked against the kernel's own verdict, not against the compiler's idea of it.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { compileSeccomp, type SeccompProfile } from "../../src/sandbox/seccomp.js";
import { SYSCALL_NAMES } from "../../src/spec/syscalls.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

const SRC = fileURLToPath(new URL("../../../", import.meta.url));
let dir: string;
let creds: string;
let probe: string;
let n = 0;

before(() => {
  dir = tempDir("moat-seccomp-");
  creds = join(dir, "moat-creds");
  probe = join(dir, "probe");
  execFileSync("gcc", ["-static", "-O1", "-o", creds, join(SRC, "src/vm/assets/moat-creds.c")]);
  execFileSync("gcc", ["-static", "-O1", "-o", probe, join(SRC, "test/sandbox/seccomp-probe.c")]);
});
after(cleanupTempDirs);

/** Run the probe under the profile; its lines of output. */
function underProfile(profile: SeccompProfile, args: string[]): string[] {
  const file = join(dir, `p${++n}.bpf`);
  writeFileSync(file, compileSeccomp(profile).program);
  const r = spawnSync(
    creds,
    [
      "--root",
      "/",
      "--cwd",
      dir,
      "--uid",
      "0",
      "--gid",
      "0",
      "--no-new-privs",
      "--seccomp",
      file,
      "--",
      probe,
      ...args,
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split("\n");
}

const EACCES = 13;
const denied = "Permission denied";

describe("seccomp profiles compiled to BPF", () => {
  it("each argument operator matches exactly the 64-bit values the kernel compares", () => {
    const V = 0x1_0000_0005; // a high word and a low word, so both halves are compared
    const values = [
      0n,
      4n,
      5n,
      6n,
      0x1_0000_0004n,
      0x1_0000_0005n,
      0x1_0000_0006n,
      0x2_0000_0000n,
      0x0_ffff_ffffn,
      0x1_ffff_fff5n,
    ];
    const ops: Array<[string, (x: bigint) => boolean, number?]> = [
      ["SCMP_CMP_EQ", (x) => x === BigInt(V)],
      ["SCMP_CMP_NE", (x) => x !== BigInt(V)],
      ["SCMP_CMP_GT", (x) => x > BigInt(V)],
      ["SCMP_CMP_GE", (x) => x >= BigInt(V)],
      ["SCMP_CMP_LT", (x) => x < BigInt(V)],
      ["SCMP_CMP_LE", (x) => x <= BigInt(V)],
      ["SCMP_CMP_MASKED_EQ", (x) => (x & BigInt(V)) === 0x1_0000_0004n, 0x1_0000_0004],
    ];
    for (const [op, matches, valueTwo] of ops) {
      const profile: SeccompProfile = {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [
          {
            names: ["getppid"],
            action: "SCMP_ACT_ERRNO",
            errnoRet: EACCES,
            args: [{ index: 0, value: V, ...(valueTwo !== undefined ? { valueTwo } : {}), op }],
          },
        ],
      };
      const got = underProfile(
        profile,
        values.map((v) => `0x${v.toString(16)}`),
      );
      const want = values.map((v) => (matches(v) ? denied : "ok"));
      assert.deepEqual(got, want, op);
    }
  });

  it("a rule with several conditions needs all of them; later rules still apply", () => {
    const profile: SeccompProfile = {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [
        {
          names: ["getppid"],
          action: "SCMP_ACT_ERRNO",
          errnoRet: EACCES,
          args: [
            { index: 0, value: 10, op: "SCMP_CMP_GE" },
            { index: 0, value: 20, op: "SCMP_CMP_LT" },
          ],
        },
        { names: ["getppid"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 99, op: "SCMP_CMP_EQ" }] },
      ],
    };
    assert.deepEqual(underProfile(profile, ["9", "10", "19", "20", "99"]), [
      "ok",
      denied,
      denied,
      "ok",
      "Operation not permitted",
    ]);
  });

  it("an allowlist: the default action for everything else, and no escape through the i386 or x32 ABI", (t) => {
    const allowed = [...SYSCALL_NAMES.values()].filter((s) => s !== "getpid" && s !== "mkdir");
    const profile: SeccompProfile = {
      defaultAction: "SCMP_ACT_ERRNO",
      architectures: ["SCMP_ARCH_X86_64"],
      syscalls: [{ names: allowed, action: "SCMP_ACT_ALLOW" }],
    };
    assert.deepEqual(underProfile(profile, ["1"]), ["ok"]);
    assert.deepEqual(underProfile(profile, ["mkdir", join(dir, "nope")]), ["Operation not permitted"]);
    // getpid through the x32 number, and through int 0x80 (i386 number 20) where this kernel
    // offers that ABI at all: the default action.
    assert.deepEqual(underProfile(profile, ["x32"]), ["Operation not permitted"]);
    const unfiltered = execFileSync(probe, ["i386"], { encoding: "utf8" }).trim();
    if (unfiltered === "ok") assert.deepEqual(underProfile(profile, ["i386"]), ["Operation not permitted"]);
    else
      t.diagnostic(`this kernel has no i386 ABI (int 0x80: ${unfiltered}): that escape cannot be tried here`);
  });

  it("reports names it does not know, and refuses what it cannot compile", () => {
    const c = compileSeccomp({
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["getpid", "no_such_call"], action: "SCMP_ACT_ERRNO" }],
    });
    assert.deepEqual(c.unknown, ["no_such_call"]);
    assert.throws(
      () => compileSeccomp({ defaultAction: "SCMP_ACT_MAYBE" }),
      /unknown action "SCMP_ACT_MAYBE"/,
    );
    assert.throws(
      () =>
        compileSeccomp({
          defaultAction: "SCMP_ACT_ALLOW",
          syscalls: [
            { names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 6, value: 0, op: "SCMP_CMP_EQ" }] },
          ],
        }),
      /argument index 6/,
    );
    assert.throws(
      () =>
        compileSeccomp({
          defaultAction: "SCMP_ACT_ALLOW",
          syscalls: [
            {
              names: ["read"],
              action: "SCMP_ACT_ALLOW",
              args: [{ index: 0, value: 0, op: "SCMP_CMP_SOMETIMES" }],
            },
          ],
        }),
      /unknown argument operator/,
    );
  });
});
