// Kernel module dependencies. The guest kernel's virtio, 9p and overlay drivers are
// modules, and insmod (unlike modprobe) loads exactly one file, so the initramfs must
// carry the closure of what the guest needs and load it in dependency order.
import { MoatError } from "../../spec/errors.js";

/** One module: its path relative to /lib/modules/<release>/ and the modules it needs. */
export interface ModuleEntry {
  readonly name: string;
  readonly path: string;
  readonly deps: readonly string[];
}

export type ModuleTable = ReadonlyMap<string, ModuleEntry>;

/** The kernel treats '-' and '_' in module names as the same character. */
export function moduleName(fileOrName: string): string {
  const base = fileOrName.slice(fileOrName.lastIndexOf("/") + 1);
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, "").replaceAll("-", "_");
}

/** Parse depmod's modules.dep ("path: dep-path dep-path ..." per line). */
export function parseModulesDep(text: string): Map<string, ModuleEntry> {
  const table = new Map<string, ModuleEntry>();
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) {
      throw new MoatError(
        "EINVAL",
        `modules.dep line ${i + 1} has no "path:" prefix: "${line}"; regenerate it with depmod`,
      );
    }
    const path = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter((d) => d !== "")
      .map(moduleName);
    table.set(moduleName(path), { name: moduleName(path), path, deps });
  }
  return table;
}

/**
 * The load order for `wanted` and everything they depend on: every module appears
 * after all of its dependencies, each exactly once. Throws on an unknown module or a
 * dependency cycle, since either means the kernel package is not what we expect.
 */
export function resolveLoadOrder(table: ModuleTable, wanted: readonly string[]): ModuleEntry[] {
  const order: ModuleEntry[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (name: string, chain: string[]): void => {
    if (done.has(name)) return;
    if (visiting.has(name)) {
      throw new MoatError(
        "EINVAL",
        `kernel modules depend on each other in a cycle: ${[...chain, name].join(" -> ")}`,
      );
    }
    const entry = table.get(name);
    if (!entry) {
      const via = chain.length ? ` (needed by ${chain.at(-1)})` : "";
      throw new MoatError(
        "ENOENT",
        `kernel module ${name}${via} is not in the kernel package; pick a kernel flavour that builds it as a module`,
      );
    }
    visiting.add(name);
    for (const dep of entry.deps) visit(dep, [...chain, name]);
    visiting.delete(name);
    done.add(name);
    order.push(entry);
  };
  for (const w of wanted) visit(moduleName(w), []);
  return order;
}

/**
 * The `depends=` field of a module's .modinfo ELF section. Debian's kernel package ships
 * no modules.dep (depmod writes it at install time), so the build reads the same
 * information straight from the module files instead of installing kmod.
 */
export function modinfoDepends(elf: Buffer, file = "module"): string[] {
  const bad = (why: string) =>
    new MoatError(
      "EINVAL",
      `${file} is not a valid 64-bit ELF kernel module (${why}); re-download the kernel package`,
    );
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) throw bad("no ELF magic");
  if (elf[4] !== 2 || elf[5] !== 1) throw bad("not ELF64 little-endian");
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  if (shentsize < 64 || shoff + shnum * shentsize > elf.length || shstrndx >= shnum)
    throw bad("section table out of range");
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    const offset = Number(elf.readBigUInt64LE(at + 0x18));
    const size = Number(elf.readBigUInt64LE(at + 0x20));
    if (offset + size > elf.length) throw bad(`section ${i} out of range`);
    return { nameOff: elf.readUInt32LE(at), offset, size };
  };
  const names = section(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const nameStart = names.offset + s.nameOff;
    const nameEnd = elf.indexOf(0, nameStart);
    if (elf.toString("latin1", nameStart, nameEnd) !== ".modinfo") continue;
    for (const field of elf.toString("latin1", s.offset, s.offset + s.size).split("\0")) {
      if (field.startsWith("depends=")) {
        return field
          .slice("depends=".length)
          .split(",")
          .filter((d) => d !== "")
          .map(moduleName);
      }
    }
    return [];
  }
  throw bad("no .modinfo section");
}
