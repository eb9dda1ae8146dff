// Which isolation a sandbox gets: flag, then environment, then annotation, then the
// configuration file, then auto; a broken configuration file is an error that names it.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { chooseIsolation } from "../../src/isolation/index.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

const dir = tempDir("moat-config-");
const config = (text: string) => {
  const f = path.join(dir, `config-${Math.random().toString(16).slice(2)}.json`);
  fs.writeFileSync(f, text);
  return f;
};

test("the flag wins, then MOAT_ISOLATION, then the annotation, then the file, then auto", () => {
  const file = config('{"isolation": "vm"}');
  const annotations = { "run.moat.isolation": "userkernel" };
  assert.equal(
    chooseIsolation({ flag: "vm", annotations, env: { MOAT_ISOLATION: "userkernel", MOAT_CONFIG: file } }),
    "vm",
  );
  assert.equal(chooseIsolation({ annotations, env: { MOAT_ISOLATION: "vm", MOAT_CONFIG: file } }), "vm");
  assert.equal(chooseIsolation({ annotations, env: { MOAT_CONFIG: file } }), "userkernel");
  assert.equal(chooseIsolation({ env: { MOAT_CONFIG: file } }), "vm");
  assert.equal(chooseIsolation({ env: { MOAT_CONFIG: path.join(dir, "missing.json") } }), "auto");
  assert.equal(chooseIsolation({ env: { MOAT_CONFIG: config("{}") } }), "auto");
});

test("bad values say what is wrong and where", () => {
  assert.throws(() => chooseIsolation({ flag: "kvm", env: {} }), /unknown isolation "kvm"/);
  const broken = config("{isolation: vm");
  assert.throws(
    () => chooseIsolation({ env: { MOAT_CONFIG: broken } }),
    (e: Error) => e.message.includes(broken) && /not valid JSON/.test(e.message),
  );
  const wrong = config('{"isolation": "gvisor"}');
  assert.throws(
    () => chooseIsolation({ env: { MOAT_CONFIG: wrong } }),
    (e: Error) => e.message.includes(wrong) && /unknown isolation "gvisor"/.test(e.message),
  );
  assert.throws(
    () => chooseIsolation({ env: { MOAT_CONFIG: config('{"isolation": 3}') } }),
    /must be a string/,
  );
});
