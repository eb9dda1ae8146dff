// The host's Debian python3 in a rootfs of its own (test/helpers/python-image.ts) running
// test/userkernel/py/issue11.py: json, hashlib, subprocess of busybox commands, 8 threads
// summing, os.fork with os.waitpid, signal.setitimer with a handler, tempfile and a
// multiprocessing.Pool(4).map. Natively (chroot into the same rootfs) it must print the
// expected lines; under the userkernel it must print the same and exit 0.
//
// USERKERNEL switches the userkernel comparison on (it is, since dynamic binaries, clone,
// signal delivery and futexes work); MOAT_PYTHON=1 runs it whatever it says.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  buildPythonRootfs,
  PYTHON,
  PYTHON_ENV,
  type PythonRootfs,
  runNativeChroot,
} from "../helpers/python-image.js";
import { runIn } from "./rootfs-run.js";

/** Does issue11.py pass under the userkernel today? */
export const USERKERNEL = true;

const SCRIPT = fileURLToPath(new URL("../../../test/userkernel/py/issue11.py", import.meta.url));
const TIMEOUT_MS = 300_000;

/** What issue11.py prints, line by line, wherever it runs. */
const EXPECTED = [
  /^python 3\.\d+$/,
  /^json \{"a": null, "b": \[1, 2\]\}$/,
  /^sha256 edf1eb932299d2c1e3c973f57e454fbdf5aceeed86bae113708c69d9adc737f4$/,
  /^user root \/$/,
  /^subprocess.run 0 from busybox$/,
  /^subprocess exit code 3$/,
  /^shell pipeline 3$/,
  /^8 threads summed 499999500000 True$/,
  /^fork \+ waitpid True 7$/,
  /^setitimer handler ran at least 3 times True$/,
  /^tempfile temp$/,
  /^Pool\(4\)\.map \[0, 1, 4, 9, 16, 25, 36, 49, 64, 81\]$/,
  /^done$/,
];

function assertExpected(stdout: string, why: string): void {
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines.length, EXPECTED.length, `${why}\n${stdout}`);
  for (const [i, re] of EXPECTED.entries()) assert.match(lines[i]!, re, why);
}

describe("python3 from the host, in a rootfs of its own", () => {
  let py: PythonRootfs;
  let native: Awaited<ReturnType<typeof runNativeChroot>>;
  before(async () => {
    py = await buildPythonRootfs();
    mkdirSync(path.join(py.rootfs, "t"));
    copyFileSync(SCRIPT, path.join(py.rootfs, "t", "issue11.py"));
  });
  after(() => py?.remove());

  test("issue11.py natively, chrooted into the rootfs: the image is complete", async () => {
    native = await runNativeChroot(py.rootfs, [PYTHON, "/t/issue11.py"], { timeoutMs: TIMEOUT_MS });
    assert.equal(native.code, 0, native.stderr);
    assertExpected(native.stdout, native.stderr);
    // Nothing from the host leaks in: the interpreter finds its library in the rootfs only.
    const where = await runNativeChroot(py.rootfs, [
      PYTHON,
      "-c",
      "import os, sys; print(sys.prefix, os.path.exists('/work'))",
    ]);
    assert.equal(where.stdout, "/usr False\n", where.stderr);
  });

  if (USERKERNEL || process.env.MOAT_PYTHON === "1")
    test("issue11.py under the userkernel prints what it prints natively", {
      timeout: TIMEOUT_MS + 30_000,
    }, async () => {
      const user = await runIn(py.rootfs, [PYTHON, "/t/issue11.py"], {
        env: PYTHON_ENV,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      const why = `userkernel: ${user.signal ?? user.code}\n${user.stderr}`;
      assert.equal(user.code, 0, why);
      assertExpected(user.stdout, why);
      // The same interpreter on both sides: the same lines exactly.
      if (native) assert.equal(user.stdout, native.stdout);
    });
});
