// Shared by the userkernel tests: compile the C programs under test/userkernel/c with
// `gcc -static`, run them natively and under the userkernel, capture what they print.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { cloexecFrom } from "../../src/sys/file.js";
import { type RunOptions, type RunResult, runStatic } from "../../src/userkernel/kernel/run.js";

const run = promisify(execFile);

/** test/userkernel/c in the source tree (this file runs from dist/test/userkernel). */
export const C_DIR = fileURLToPath(new URL("../../../test/userkernel/c/", import.meta.url));

export { Collector } from "../helpers/streams.js";

import { Collector } from "../helpers/streams.js";

/** A temp dir of compiled programs; remove() deletes it. */
export async function workdir(): Promise<{
  dir: string;
  compile(name: string): Promise<string>;
  remove(): Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), "userkernel-test-"));
  return {
    dir,
    async compile(name: string): Promise<string> {
      const out = join(dir, name);
      await run("gcc", ["-static", "-O1", "-o", out, join(C_DIR, `${name}.c`)]);
      return out;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface Outcome {
  stdout: string;
  stderr: string;
  code?: number;
  signal?: string;
}

// The native run must start with descriptors 0-2 only, as a program under the userkernel
// does; a test runner (CI) may have leaked others to this process without close-on-exec.
cloexecFrom(3);

/** Run natively (a plain, untraced child: child_process is fine here), as `ids` if given. */
export function runNative(
  path: string,
  args: string[] = [],
  input?: Buffer,
  ids?: { uid: number; gid: number },
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const p = spawn(path, args, { env: { GREETING: "hi" }, stdio: ["pipe", "pipe", "pipe"], ...ids });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on("data", (c: Buffer) => out.push(c));
    p.stderr.on("data", (c: Buffer) => err.push(c));
    p.on("error", reject);
    p.on("close", (code, signal) => {
      const o: Outcome = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (code !== null) o.code = code;
      if (signal !== null) o.signal = signal;
      resolve(o);
    });
    // A program that does not read its input closes the pipe early: not an error here.
    p.stdin.on("error", () => {});
    p.stdin.end(input);
  });
}

/** Run under the userkernel with captured stdio. */
export async function runUser(
  path: string,
  args: string[] = [],
  extra: Partial<RunOptions> = {},
): Promise<Outcome & { result: RunResult; log: string[] }> {
  const stdout = new Collector();
  const stderr = new Collector();
  const log: string[] = [];
  const result = await runStatic({
    binary: path,
    argv: [path, ...args],
    env: ["GREETING=hi"],
    stdout,
    stderr,
    log: (l) => log.push(l),
    // Not PID 1 unless asked: a test program's native run is no init, and Linux shields an
    // init from the signals it has no handler for (its own raise, SIGPIPE, SIGALRM included).
    init: false,
    ...extra,
  });
  const o: Outcome & { result: RunResult; log: string[] } = {
    stdout: stdout.text(),
    stderr: stderr.text(),
    result,
    log,
  };
  if (result.code !== undefined) o.code = result.code;
  if (result.signal !== undefined) o.signal = result.signal;
  return o;
}

/** Is a host process still alive (a zombie counts as dead)? */
export async function alive(pid: number): Promise<boolean> {
  try {
    const { readFile } = await import("node:fs/promises");
    const stat = await readFile(`/proc/${pid}/stat`, "latin1");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/**
 * Run a compiled test program natively and under the userkernel: both must exit 0 and print
 * the same, and the output must hold each of `lines` (so the comparison means the program got
 * that far and met those cases).
 */
export async function assertSameAsNative(
  bin: string,
  lines: string[],
  input?: string,
): Promise<Awaited<ReturnType<typeof runUser>>> {
  const native = await runNative(bin, [], input === undefined ? undefined : Buffer.from(input));
  const user = await runUser(
    bin,
    [],
    input === undefined ? {} : { stdin: Readable.from([Buffer.from(input)]) },
  );
  assert.equal(native.code, 0, native.stderr);
  assert.equal(user.code, 0, user.stderr);
  assert.equal(user.stdout, native.stdout);
  for (const line of lines)
    assert.ok(user.stdout.includes(`${line}\n`), `missing "${line}" in:\n${user.stdout}`);
  return user;
}
