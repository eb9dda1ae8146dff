// Random sequences of memory operations against a real stub: after every step, the host's
// own view of the stub (/proc/pid/maps, process_vm_readv) must match the kernel's VMAs
// and the bytes the kernel reads through the memory file.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { processVmRead } from "../../src/sys/mman.js";
import { KernelError } from "../../src/userkernel/errno.js";
import { AddressSpace, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE } from "../../src/userkernel/mm/addrspace.js";
import { fixedLayout } from "../../src/userkernel/mm/layout.js";
import { MemoryFile } from "../../src/userkernel/mm/memfile.js";
import { PtracePlatform } from "../../src/userkernel/platform/ptrace.js";

const P = 4096;
const WINDOW = 0x1000_0000;
const PAGES = 48;

type Op =
  | { op: "map"; page: number; n: number; prot: number; fixed: boolean }
  | { op: "unmap"; page: number; n: number }
  | { op: "protect"; page: number; n: number; prot: number }
  | { op: "remap"; page: number; n: number; m: number; move: boolean }
  | { op: "dontneed"; page: number; n: number };

const page = fc.integer({ min: 0, max: PAGES - 1 });
const count = fc.integer({ min: 1, max: 8 });
const prot = fc.constantFrom(0, 1, 3, 5, 7);
const ops: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("map" as const), page, n: count, prot, fixed: fc.boolean() }),
  fc.record({ op: fc.constant("unmap" as const), page, n: count }),
  fc.record({ op: fc.constant("protect" as const), page, n: count, prot }),
  fc.record({ op: fc.constant("remap" as const), page, n: count, m: count, move: fc.boolean() }),
  fc.record({ op: fc.constant("dontneed" as const), page, n: count }),
);

interface Range {
  start: number;
  end: number;
  prot: number;
  off: number;
}

/** Merge neighbours that continue each other, as both sides may split differently. */
function normalise(rs: Range[]): Range[] {
  const out: Range[] = [];
  for (const r of rs.sort((a, b) => a.start - b.start)) {
    const last = out.at(-1);
    if (last && last.end === r.start && last.prot === r.prot && last.off + (last.end - last.start) === r.off)
      last.end = r.end;
    else out.push({ ...r });
  }
  return out;
}

function hostRanges(pid: number): Range[] {
  const rs: Range[] = [];
  for (const line of readFileSync(`/proc/${pid}/maps`, "latin1").trim().split("\n")) {
    if (!line.includes("moat-memory")) continue;
    const [span, perms, off] = line.split(/\s+/);
    const [s, e] = span!.split("-").map((x) => Number.parseInt(x, 16));
    const p = (perms![0] === "r" ? 1 : 0) | (perms![1] === "w" ? 2 : 0) | (perms![2] === "x" ? 4 : 0);
    rs.push({ start: s!, end: e!, prot: p, off: Number.parseInt(off!, 16) });
  }
  return normalise(rs);
}

describe("address space model check", () => {
  const mem = new MemoryFile(2 ** 30);
  const platform = PtracePlatform.start(mem.fd);
  after(() => {
    platform.kill();
    mem.close();
  });

  it("keeps the host mappings and contents equal to the kernel's view", () => {
    let stamp = 0;
    fc.assert(
      fc.property(fc.array(ops, { minLength: 1, maxLength: 25 }), (seq) => {
        const mm = new AddressSpace(mem, platform, platform.reserved, fixedLayout());
        try {
          for (const o of seq) {
            const at = WINDOW + o.page * P;
            try {
              if (o.op === "map")
                mm.mapAnonymous(
                  o.fixed ? at : 0,
                  o.n * P,
                  o.prot,
                  MAP_PRIVATE | MAP_ANONYMOUS | (o.fixed ? MAP_FIXED : 0),
                );
              else if (o.op === "unmap") mm.munmap(at, o.n * P);
              else if (o.op === "protect") mm.mprotect(at, o.n * P, o.prot);
              else if (o.op === "remap") mm.mremap(at, o.n * P, o.m * P, o.move ? 1 : 0, 0);
              else mm.madvise(at, o.n * P, 4);
            } catch (e) {
              if (!(e instanceof KernelError)) throw e;
            }
            const mine = normalise(
              mm.list().map((v) => ({ start: v.start, end: v.end, prot: v.prot, off: v.off })),
            );
            assert.deepEqual(hostRanges(platform.hostPid), mine, JSON.stringify(o));
            // Write a fresh stamp through the memory file into every mapping and read it back
            // through the host, wherever the host lets us read.
            for (const v of mine) {
              stamp++;
              const b = Buffer.alloc(8);
              b.writeDoubleLE(stamp);
              mm.write(v.start, b, "force");
              if (v.prot & 1) {
                const got = Buffer.alloc(8);
                processVmRead(platform.hostPid, BigInt(v.start), got);
                assert.ok(got.equals(b), `contents at 0x${v.start.toString(16)}`);
              }
            }
          }
        } finally {
          for (const v of mm.list()) mm.munmap(v.start, v.end - v.start);
        }
        assert.equal(hostRanges(platform.hostPid).length, 0);
      }),
      { numRuns: 40 },
    );
  });
});
