// A Node process that runs one program under the userkernel and then waits: kill.test.ts
// SIGKILLs it to check that nothing it started outlives it. Usage: kill-child ROOTFS ARGV...
import { runStatic } from "../../src/userkernel/kernel/run.js";

const [rootfs, ...argv] = process.argv.slice(2);
if (!rootfs || argv.length === 0) {
  process.stderr.write("usage: kill-child ROOTFS ARGV...\n");
  process.exit(2);
}
const r = await runStatic({
  rootfs,
  binary: argv[0]!,
  argv,
  env: ["PATH=/bin:/usr/bin"],
  stdin: process.stdin,
  onStart: ({ hostPid }) => process.stdout.write(`${JSON.stringify({ stub: hostPid })}\n`),
});
process.stdout.write(`${JSON.stringify(r)}\n`);
