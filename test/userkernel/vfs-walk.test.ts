// The VFS's path walk against Linux's own: random paths over a rootfs of directories,
// files and every kind of symlink, resolved by the kernel's walk and by the host kernel
// (openat2 RESOLVE_IN_ROOT through the gofer, which resolves as if chrooted there). Both
// must find the same inode or fail with the same errno.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { close, O_NOFOLLOW, O_PATH } from "../../src/sys/file.js";
import { KernelError } from "../../src/userkernel/errno.js";
import { GoferClient } from "../../src/userkernel/gofer/client.js";
import { AT_SYMLINK_NOFOLLOW, type Ctx, Vfs } from "../../src/userkernel/vfs/index.js";

const NAMES = ["a", "b", "f", "up", "abs", "dang", "loop", "fl", "deep", ".", "..", "x"];

function build(root: string): void {
  const mk = (p: string): void => {
    fs.mkdirSync(path.join(root, p), { recursive: true });
  };
  const ln = (target: string, p: string): void => fs.symlinkSync(target, path.join(root, p));
  mk("a/b/a");
  mk("b/a");
  fs.writeFileSync(path.join(root, "f"), "f");
  fs.writeFileSync(path.join(root, "a/f"), "af");
  fs.writeFileSync(path.join(root, "a/b/f"), "abf");
  ln("..", "a/up");
  ln("../..", "a/b/up");
  ln("/a/b", "abs");
  ln("/a", "a/b/abs");
  ln("nowhere", "dang");
  ln("loop", "loop");
  ln("f", "fl");
  ln("../f", "a/fl");
  ln("a/b/abs/b/abs", "deep");
  ln("/../../../a", "b/up");
}

type Outcome = string;

describe("vfs path walk matches Linux", () => {
  let base: string;
  let gofer: GoferClient;
  let vfs: Vfs;
  let ctx: Ctx;
  before(async () => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), "moat-vfs-walk-"));
    build(base);
    gofer = await GoferClient.start(base);
    vfs = await Vfs.create({ gofer });
    ctx = vfs.adminCtx(1);
  });
  after(async () => {
    await gofer?.close();
    if (base) fs.rmSync(base, { recursive: true, force: true });
  });

  const linux = async (p: string, follow: boolean): Promise<Outcome> => {
    try {
      const r = await gofer.open(p, O_PATH | (follow ? 0 : O_NOFOLLOW), true);
      close(r.fd);
      return `ino ${r.stat.ino}`;
    } catch (e) {
      return (e as KernelError).code;
    }
  };
  const ours = async (p: string, follow: boolean): Promise<Outcome> => {
    try {
      return `ino ${(await vfs.stat(ctx, null, p, follow ? 0 : AT_SYMLINK_NOFOLLOW)).ino}`;
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
      return e.code;
    }
  };

  const paths = fc
    .tuple(fc.boolean(), fc.array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 7 }), fc.boolean())
    .map(([abs, parts, slash]) => `${abs ? "/" : ""}${parts.join("/")}${slash ? "/" : ""}`);

  it("stat (following the last symlink)", async () => {
    await fc.assert(
      fc.asyncProperty(paths, async (p) => {
        assert.equal(await ours(p, true), await linux(p, true), p);
      }),
      { numRuns: 1000 },
    );
  });

  it("lstat (not following it)", async () => {
    await fc.assert(
      fc.asyncProperty(paths, async (p) => {
        assert.equal(await ours(p, false), await linux(p, false), p);
      }),
      { numRuns: 1000 },
    );
  });

  it("agrees on the cases that matter most", async () => {
    for (const p of [
      "deep",
      "deep/",
      "a/up/a/up",
      "b/up/b",
      "abs/abs/f",
      "loop/",
      "fl/",
      "dang",
      "dang/",
      "a/fl",
    ])
      for (const follow of [true, false]) assert.equal(await ours(p, follow), await linux(p, follow), p);
  });
});
