import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isMoatError } from "../../src/spec/errors.js";
import { CpioWriter } from "../../src/vm/assets/cpio.js";

function sample(): Buffer {
  return new CpioWriter()
    .dir("bin")
    .file("bin/tool", Buffer.from("#!/bin/sh\necho hi\n"), 0o755)
    .symlink("bin/sh", "/bin/busybox")
    .dir("dev")
    .charDevice("dev/console", 5, 1, 0o600)
    .charDevice("dev/null", 1, 3, 0o666)
    .dir("tmp", 0o1777)
    .file("odd-size", Buffer.from("abcde"))
    .file("empty", Buffer.alloc(0))
    .finish();
}

describe("cpio newc writer", () => {
  it("produces an archive cpio(1) extracts faithfully", () => {
    const dir = mkdtempSync(join(tmpdir(), "moat-vm-cpio-"));
    try {
      const archive = sample();
      assert.equal(archive.length % 4, 0);
      const listing = execFileSync("cpio", ["-itv", "--quiet"], { input: archive, encoding: "utf8" });
      assert.match(listing, /^crw-------\s+1 root\s+root\s+5,\s+1 .* dev\/console$/m);
      assert.match(listing, /^lrwxrwxrwx .* bin\/sh -> \/bin\/busybox$/m);
      execFileSync("cpio", ["-idm", "--quiet", "--no-absolute-filenames"], { input: archive, cwd: dir });
      assert.equal(readFileSync(join(dir, "bin/tool"), "utf8"), "#!/bin/sh\necho hi\n");
      assert.equal(lstatSync(join(dir, "bin/tool")).mode & 0o7777, 0o755);
      assert.equal(readFileSync(join(dir, "odd-size"), "utf8"), "abcde");
      assert.equal(readFileSync(join(dir, "empty")).length, 0);
      assert.equal(readlinkSync(join(dir, "bin/sh")), "/bin/busybox");
      const con = lstatSync(join(dir, "dev/console"));
      assert.ok(con.isCharacterDevice());
      assert.equal(con.rdev, (5 << 8) | 1);
      assert.equal(con.mode & 0o7777, 0o600);
      const nul = lstatSync(join(dir, "dev/null"));
      assert.equal(nul.rdev, (1 << 8) | 3);
      assert.equal(lstatSync(join(dir, "tmp")).mode & 0o7777, 0o1777);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is byte-for-byte reproducible", () => {
    assert.ok(sample().equals(sample()));
  });

  it("refuses entries the kernel would drop or that escape the root", () => {
    const bad = (f: (w: CpioWriter) => void, code: "EINVAL" | "EEXIST") =>
      assert.throws(
        () => f(new CpioWriter()),
        (e: unknown) => isMoatError(e, code),
      );
    bad((w) => w.file("missing-dir/file", Buffer.from("x")), "EINVAL");
    bad((w) => w.dir("a").file("a/../../etc/passwd", Buffer.from("x")), "EINVAL");
    bad((w) => w.file(".", Buffer.from("x")), "EINVAL");
    bad((w) => w.dir("a").dir("a"), "EEXIST");
    bad((w) => w.file("TRAILER!!!", Buffer.from("x")), "EINVAL");
    bad((w) => w.symlink("l", ""), "EINVAL");
  });

  it("cannot be written to after finish", () => {
    const w = new CpioWriter();
    w.finish();
    assert.throws(
      () => w.dir("x"),
      (e: unknown) => isMoatError(e, "ESTATE"),
    );
  });
});
