// Builds the guest assets from the real Debian packages into a private root.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isMoatError } from "../../src/spec/errors.js";
import { ensureAssets, GUEST_MODULES, type GuestAssets } from "../../src/vm/assets/build.js";
import { download } from "../../src/vm/assets/debian.js";
import { ASSETS_VERSION, assetDir, MANIFEST, readManifest } from "../../src/vm/assets/manifest.js";
import { moduleName } from "../../src/vm/assets/modules.js";
import { defaultProgress } from "../../src/vm/assets/progress.js";

let root: string;
let built: GuestAssets;
const steps: string[] = [];

before(async () => {
  root = mkdtempSync(join(tmpdir(), "moat-vm-assets-"));
});

after(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("guest asset build", () => {
  it("builds kernel, initramfs and manifest on the first call", async (t) => {
    const started = Date.now();
    built = await ensureAssets({ root, progress: (s) => steps.push(s) });
    t.diagnostic(`first build took ${Date.now() - started} ms`);
    assert.equal(built.dir, assetDir(root));
    assert.equal(built.dir, join(root, "assets", ASSETS_VERSION));
    assert.ok(steps.length >= 4, `progress steps: ${steps.join(" | ")}`);
    assert.ok(steps.some((s) => s.startsWith("downloading linux-image-")));
    const m = built.manifest;
    assert.match(m.kernelPackage, /^linux-image-\d.*-amd64$/);
    assert.equal(m.kernelRelease, m.kernelPackage.slice("linux-image-".length));
    // Every file is listed with its real hash, checked by re-reading.
    assert.deepEqual(Object.keys(m.files).sort(), [m.image, m.initrd, m.kernel].sort());
    assert.deepEqual(await readManifest(built.dir, true), m);
    // No staging directory is left next to the cache.
    assert.deepEqual(
      execFileSync("ls", ["-A", join(root, "assets")], { encoding: "utf8" })
        .trim()
        .split("\n"),
      [ASSETS_VERSION],
    );
  });

  it("returns the complete cache at once on the second call", async () => {
    const started = Date.now();
    const again = await ensureAssets({ root, progress: (s) => steps.push(`again: ${s}`) });
    assert.ok(Date.now() - started < 500, `cached call took ${Date.now() - started} ms`);
    assert.deepEqual(again, built);
    assert.ok(!steps.some((s) => s.startsWith("again:")), "the cached call rebuilt something");
  });

  it("packs busybox, /init, device nodes and the modules in dependency order", () => {
    const cpio = readFileSync(built.initrd);
    const listing = execFileSync("cpio", ["-itv", "--quiet"], {
      input: cpio,
      encoding: "utf8",
      maxBuffer: 1 << 24,
    });
    assert.match(listing, /^-rwxr-xr-x .* init$/m);
    assert.match(listing, /^-rwxr-xr-x .* bin\/busybox$/m);
    assert.match(listing, /^lrwxrwxrwx .* bin\/sh -> \/bin\/busybox$/m);
    assert.match(listing, /^crw------- .*5,\s+1 .* dev\/console$/m);
    assert.match(listing, /^crw-rw-rw- .*1,\s+3 .* dev\/null$/m);
    // The agent, the Node that runs it, and the dynamic loader Node needs: links into the
    // guest image, which /init mounts at /moat; the initramfs itself stays small.
    assert.match(listing, /^lrwxrwxrwx .* bin\/node -> \/moat\/bin\/node$/m);
    assert.match(listing, /^lrwxrwxrwx .* lib\/moat\/agent\.cjs -> \/moat\/lib\/moat\/agent\.cjs$/m);
    assert.match(
      listing,
      /^lrwxrwxrwx .* lib64\/ld-linux-x86-64\.so\.2 -> \/moat\/lib64\/ld-linux-x86-64\.so\.2$/m,
    );
    assert.match(listing, /^drwxr-xr-x .* moat$/m);
    assert.ok(cpio.length < 32 * 1024 * 1024, `initramfs is ${cpio.length} bytes`);

    const order = execFileSync("cpio", ["-i", "--quiet", "--to-stdout", "etc/moat/modules"], {
      input: cpio,
      encoding: "utf8",
    })
      .trim()
      .split("\n");
    assert.deepEqual(
      order,
      built.manifest.modules.map(
        (p) => `/lib/modules/${built.manifest.kernelRelease}/${p.replace(/\.(xz|zst)$/, "")}`,
      ),
    );
    const names = order.map(moduleName);
    for (const m of GUEST_MODULES) assert.ok(names.includes(m), `${m} missing`);
    const before = (a: string, b: string) =>
      assert.ok(names.indexOf(a) < names.indexOf(b), `${a} must load before ${b}`);
    before("virtio_ring", "virtio");
    before("virtio", "virtio_mmio");
    before("virtio", "virtio_console");
    before("netfs", "fscache");
    before("fscache", "9p");
    before("9pnet", "9pnet_virtio");
    before("9pnet", "9p");
    before("failover", "net_failover");
    before("net_failover", "virtio_net");
    before("crc32c_generic", "erofs");
    for (const p of order)
      assert.match(listing, new RegExp(`^-rw-r--r-- .* ${p.slice(1).replaceAll(".", "\\.")}$`, "m"));
  });

  it("is reproducible: a second build from the same packages is byte-identical", async () => {
    const other = mkdtempSync(join(tmpdir(), "moat-vm-assets-"));
    try {
      const again = await ensureAssets({ root: other });
      assert.equal(again.manifest.kernelPackageVersion, built.manifest.kernelPackageVersion);
      assert.deepEqual(again.manifest.files, built.manifest.files);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("never trusts a damaged or half-written cache", async () => {
    const copy = join(root, "copy");
    cpSync(built.dir, copy, { recursive: true });
    assert.ok(await readManifest(copy));
    truncateSync(join(copy, built.manifest.initrd), 100);
    assert.equal(await readManifest(copy), undefined);
    rmSync(join(copy, MANIFEST));
    assert.equal(await readManifest(copy), undefined);
    rmSync(copy, { recursive: true });
  });

  it("names the package and the apt sources when a download fails", async () => {
    const dir = mkdtempSync(join(tmpdir(), "moat-vm-apt-"));
    try {
      await assert.rejects(
        download("moat-no-such-package-xyz", dir),
        (e: unknown) =>
          isMoatError(e, "EIO") &&
          /moat-no-such-package-xyz/.test(e.message) &&
          /apt sources/.test(e.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("prints progress only on a terminal", () => {
    const written: string[] = [];
    const stream = (isTTY: boolean) =>
      ({ isTTY, write: (s: string) => written.push(s) }) as unknown as NodeJS.WriteStream;
    defaultProgress(stream(false))("step one");
    assert.deepEqual(written, []);
    defaultProgress(stream(true))("step two");
    assert.deepEqual(written, ["moat: guest assets: step two\n"]);
  });
});
