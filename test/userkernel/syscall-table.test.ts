import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { SYSCALL_NAMES } from "../../src/userkernel/syscalls/names.js";
import { SYSCALL_TABLE, SYSCALLS } from "../../src/userkernel/syscalls/table.js";
import { supportCounts, tableMarkdown } from "../../src/userkernel/syscalls/table-doc.js";

// dist/test/userkernel/ -> the checkout.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

describe("the syscall table", () => {
  it("lists every x86-64 number once, in increasing order", () => {
    const nrs = SYSCALL_TABLE.map((r) => r.nr);
    for (let i = 1; i < nrs.length; i++)
      assert.ok(nrs[i]! > nrs[i - 1]!, `row ${nrs[i]} (${SYSCALL_TABLE[i]!.name}) comes after ${nrs[i - 1]}`);
    const missing = [...SYSCALL_NAMES.keys()].filter((nr) => !nrs.includes(nr));
    assert.deepEqual(missing, [], `numbers without a row: ${missing.join(", ")}`);
    // Linux's syscall_64.tbl: 0..334 without a gap, then 424 on.
    for (let nr = 0; nr <= 334; nr++) assert.ok(nrs.includes(nr), `number ${nr} has no row`);
    for (let nr = 424; nr <= 462; nr++) assert.ok(nrs.includes(nr), `number ${nr} has no row`);
    for (const r of SYSCALL_TABLE) assert.equal(r.name, SYSCALL_NAMES.get(r.nr));
  });

  it("gives each row a handler, and the dispatcher every served row", () => {
    const enosys = SYSCALL_TABLE.find((r) => r.support === "none")!.handler;
    for (const r of SYSCALL_TABLE) {
      assert.equal(typeof r.handler, "function", `${r.name} has no handler`);
      if (r.support === "none") {
        assert.equal(SYSCALLS.has(r.nr), false, `${r.name} is ENOSYS but the dispatcher serves it`);
        assert.throws(() => r.handler({} as never, []), { code: "ENOSYS" });
      } else {
        assert.equal(SYSCALLS.get(r.nr)?.handler, r.handler, `${r.name} is not in the dispatcher's map`);
        if (r.support !== "error")
          assert.notEqual(r.handler, enosys, `${r.name} is ${r.support} with no handler`);
      }
      if (r.support === "partial" || r.support === "error")
        assert.ok(r.note, `${r.name} is ${r.support}: its note must say what is missing or why`);
    }
    const c = supportCounts();
    assert.equal(c.full + c.partial + c.error + c.none, c.total);
  });

  it("is what docs/userkernel-syscalls.md shows (regenerate: node dist/bench/syscalls.js --write)", async () => {
    const doc = await readFile(path.join(ROOT, "docs", "userkernel-syscalls.md"), "utf8");
    assert.equal(doc, tableMarkdown(), "docs/userkernel-syscalls.md is stale");
  });
});
