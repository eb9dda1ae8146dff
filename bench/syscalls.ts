// node dist/bench/syscalls.js [--write]
// Prints the userkernel syscall table's counts (full / partial / error / ENOSYS rows) and its
// markdown; --write puts the markdown in docs/userkernel-syscalls.md, where a test checks it.
import { rename, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { countsLine, tableMarkdown } from "../src/userkernel/syscalls/table-doc.js";

const doc = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "docs",
  "userkernel-syscalls.md",
);
const md = tableMarkdown();
if (process.argv.includes("--write")) {
  const tmp = `${doc}.tmp`;
  await writeFile(tmp, md);
  await rename(tmp, doc);
  console.log(`wrote ${path.relative(process.cwd(), doc)}`);
} else process.stdout.write(md);
console.log(countsLine());
