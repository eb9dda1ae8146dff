import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isMoatError } from "../../src/spec/errors.js";
import {
  modinfoDepends,
  moduleName,
  parseModulesDep,
  resolveLoadOrder,
} from "../../src/vm/assets/modules.js";

// Shaped like depmod's output: the wanted modules listed out of dependency order,
// with transitive deps spelled out, a compressed file and a dash in a file name.
const SAMPLE = `kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet_virtio.ko: kernel/drivers/virtio/virtio.ko kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/net/9p/9pnet.ko:
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
kernel/net/core/failover.ko.xz:
kernel/drivers/some/dash-name.ko: kernel/drivers/virtio/virtio.ko
`;

function names(order: { name: string }[]): string[] {
  return order.map((m) => m.name);
}

function assertTopological(order: { name: string; deps: readonly string[] }[]): void {
  const seen = new Set<string>();
  for (const m of order) {
    for (const d of m.deps) assert.ok(seen.has(d), `${m.name} loaded before its dependency ${d}`);
    assert.ok(!seen.has(m.name), `${m.name} listed twice`);
    seen.add(m.name);
  }
}

describe("modules.dep resolver", () => {
  it("parses paths and normalises names", () => {
    const t = parseModulesDep(SAMPLE);
    assert.equal(t.size, 12);
    assert.equal(t.get("virtio_net")?.path, "kernel/drivers/net/virtio_net.ko.xz");
    assert.deepEqual(t.get("virtio_net")?.deps, ["net_failover", "failover", "virtio", "virtio_ring"]);
    assert.deepEqual(t.get("virtio_ring")?.deps, []);
    assert.ok(t.has("dash_name"));
    assert.equal(moduleName("a/b/dash-name.ko.zst"), "dash_name");
  });

  it("orders the guest modules after their dependencies, each once", () => {
    const order = resolveLoadOrder(parseModulesDep(SAMPLE), [
      "9p",
      "9pnet_virtio",
      "virtio_mmio",
      "virtio_net",
    ]);
    assertTopological(order);
    assert.deepEqual(names(order), [
      "9pnet",
      "netfs",
      "fscache",
      "9p",
      "virtio_ring",
      "virtio",
      "9pnet_virtio",
      "virtio_mmio",
      "failover",
      "net_failover",
      "virtio_net",
    ]);
  });

  it("accepts dashes in requested names", () => {
    const order = resolveLoadOrder(parseModulesDep(SAMPLE), ["dash-name"]);
    assert.deepEqual(names(order), ["virtio_ring", "virtio", "dash_name"]);
  });

  it("names a missing module and who needed it", () => {
    const t = parseModulesDep("kernel/a.ko: kernel/b.ko\n");
    assert.throws(
      () => resolveLoadOrder(t, ["a"]),
      (e: unknown) => isMoatError(e, "ENOENT") && /module b \(needed by a\)/.test(e.message),
    );
  });

  it("rejects a dependency cycle", () => {
    const t = parseModulesDep(
      "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko: kernel/a.ko\n",
    );
    assert.throws(
      () => resolveLoadOrder(t, ["a"]),
      (e: unknown) => isMoatError(e, "EINVAL") && e.message.includes("a -> b -> c -> a"),
    );
  });

  it("rejects a malformed line", () => {
    assert.throws(
      () => parseModulesDep("no colon here\n"),
      (e: unknown) => isMoatError(e, "EINVAL"),
    );
  });
});

/** A minimal ELF64 with a section-name table and one named section. */
function elfWithSection(name: string, body: Buffer): Buffer {
  const shstrtab = Buffer.from(`\0.shstrtab\0${name}\0`);
  const dataOff = 64;
  const strOff = dataOff + body.length;
  const shoff = strOff + shstrtab.length;
  const elf = Buffer.alloc(shoff + 3 * 64);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2;
  elf[5] = 1;
  elf.writeBigUInt64LE(BigInt(shoff), 0x28);
  elf.writeUInt16LE(64, 0x3a);
  elf.writeUInt16LE(3, 0x3c);
  elf.writeUInt16LE(1, 0x3e);
  body.copy(elf, dataOff);
  shstrtab.copy(elf, strOff);
  const sh = (i: number, nameOff: number, off: number, size: number) => {
    const at = shoff + i * 64;
    elf.writeUInt32LE(nameOff, at);
    elf.writeBigUInt64LE(BigInt(off), at + 0x18);
    elf.writeBigUInt64LE(BigInt(size), at + 0x20);
  };
  sh(1, 1, strOff, shstrtab.length);
  sh(2, 11, dataOff, body.length);
  return elf;
}

describe("modinfo reader", () => {
  it("reads depends= from .modinfo", () => {
    const elf = elfWithSection(
      ".modinfo",
      Buffer.from("license=GPL\0depends=virtio,9pnet,virtio-ring\0name=x\0"),
    );
    assert.deepEqual(modinfoDepends(elf), ["virtio", "9pnet", "virtio_ring"]);
  });

  it("returns no deps for an empty depends=", () => {
    assert.deepEqual(modinfoDepends(elfWithSection(".modinfo", Buffer.from("depends=\0"))), []);
  });

  it("rejects files that are not modules", () => {
    assert.throws(
      () => modinfoDepends(Buffer.from("not an elf at all".repeat(8))),
      (e: unknown) => isMoatError(e, "EINVAL"),
    );
    assert.throws(
      () => modinfoDepends(elfWithSection(".text", Buffer.from("depends=a\0"))),
      (e: unknown) => isMoatError(e, "EINVAL") && e.message.includes("no .modinfo"),
    );
  });
});
