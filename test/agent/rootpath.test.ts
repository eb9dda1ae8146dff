// The agent resolves a container's working directory on the guest side of the chroot,
// so symlinks planted in an image must never lead it outside the rootfs.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { resolveInRoot } from "../../src/agent/rootpath.js";

describe("resolveInRoot", () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), "moat-agent-rootpath-"));
    mkdirSync(join(root, "a/b"), { recursive: true });
    symlinkSync("/", join(root, "abs"));
    symlinkSync("../../../../..", join(root, "a/up"));
    symlinkSync("/a/b", join(root, "tob"));
    symlinkSync("loop2", join(root, "loop1"));
    symlinkSync("loop1", join(root, "loop2"));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it("follows links inside the rootfs", () => {
    assert.equal(resolveInRoot(root, "/tob"), join(root, "a/b"));
    assert.equal(resolveInRoot(root, "tob/../b"), join(root, "a/b"));
    assert.equal(resolveInRoot(root, "/"), root);
  });

  it("keeps absolute links and .. inside the rootfs", () => {
    assert.equal(resolveInRoot(root, "/abs"), root);
    assert.equal(resolveInRoot(root, "/abs/etc"), join(root, "etc"));
    assert.equal(resolveInRoot(root, "/a/up/etc"), join(root, "etc"));
    assert.equal(resolveInRoot(root, "/../../etc"), join(root, "etc"));
  });

  it("stops on symlink loops", () => {
    assert.throws(() => resolveInRoot(root, "/loop1"), /too many symbolic links/);
  });
});
