// What one intercepted system call costs the userkernel, against two baselines measured in
// the same run: the syscall natively, and a C tracer doing the same ptrace work (the floor
// of the ptrace platform). Prints microseconds per syscall and the ratios.
// Usage: node dist/bench/userkernel-getpid.js [N]
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { runStatic } from "../src/userkernel/kernel/run.js";

const exec = promisify(execFile);
const FLOORS = fileURLToPath(new URL("../../bench/floors/", import.meta.url));
const N = Number(process.argv[2] ?? 100_000);

function runNative(bin: string, n: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(bin, [String(n)], { stdio: "ignore" });
    p.on("error", reject);
    p.on("close", (code) => {
      if (code !== 0) reject(new Error(`native loop exited ${code}`));
      else resolve(Number(process.hrtime.bigint() - t0) / 1000);
    });
  });
}

async function runUser(bin: string, n: number): Promise<number> {
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const t0 = process.hrtime.bigint();
  const r = await runStatic({
    binary: bin,
    argv: [bin, String(n)],
    env: [],
    stdout: sink,
    stderr: sink,
    log: () => {},
  });
  if (r.code !== 0) throw new Error(`userkernel loop ended with ${JSON.stringify(r)}`);
  return Number(process.hrtime.bigint() - t0) / 1000;
}

/** µs per syscall: the run with N calls minus the run with none (start-up and exit cost). */
async function perCall(run: (n: number) => Promise<number>): Promise<number> {
  await run(1000); // warm up (page cache, JIT)
  const empty = Math.min(await run(0), await run(0));
  const full = await run(N);
  return (full - empty) / N;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "userkernel-bench-"));
  try {
    const loop = join(dir, "getpid_loop");
    const floor = join(dir, "ptrace_getpid");
    await exec("gcc", ["-static", "-O1", "-o", loop, join(FLOORS, "getpid_loop.c")]);
    await exec("gcc", ["-O2", "-o", floor, join(FLOORS, "ptrace_getpid.c")]);

    const native = await perCall((n) => runNative(loop, n));
    await exec(floor, ["1000"]);
    const cFloor = Number((await exec(floor, [String(N)])).stdout.trim());
    const cSpin = Number((await exec(floor, [String(N), "spin"])).stdout.trim());
    const user = await perCall((n) => runUser(loop, n));

    const f = (x: number) => x.toFixed(3).padStart(9);
    console.log(`getpid x ${N}`);
    console.log(`  native              ${f(native)} us/syscall`);
    console.log(`  C ptrace floor      ${f(cFloor)} us/syscall (blocking waitpid)`);
    console.log(`  C ptrace, polling   ${f(cSpin)} us/syscall (waitpid WNOHANG loop)`);
    console.log(`  moat userkernel     ${f(user)} us/syscall`);
    console.log(`  userkernel / floor  ${f(user / cFloor)}`);
    console.log(`  userkernel / polling C ${f(user / cSpin)}`);
    console.log(`  userkernel / native ${f(user / native)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
