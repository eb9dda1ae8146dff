// Which isolation a sandbox gets: flag, then environment, then annotation, then the
// configuration file, then auto; a broken configuration file is an error that names it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { availability, chooseIsolation, explainAuto, selectBackend } from "../../src/isolation/index.js";
import { vmRootfsMode, vmTemplateEnabled, vmTemplateMaxAge } from "../../src/spec/config.js";
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

test("VM templates are off unless MOAT_VM_TEMPLATE or the file's vmTemplate turns them on", () => {
  assert.equal(vmTemplateEnabled({ MOAT_CONFIG: path.join(dir, "missing.json") }), false);
  assert.equal(vmTemplateEnabled({ MOAT_CONFIG: config('{"isolation": "vm"}') }), false);
  const on = config('{"vmTemplate": true}');
  assert.equal(vmTemplateEnabled({ MOAT_CONFIG: on }), true);
  assert.equal(vmTemplateEnabled({ MOAT_CONFIG: on, MOAT_VM_TEMPLATE: "0" }), false);
  assert.equal(vmTemplateEnabled({ MOAT_CONFIG: config("{}"), MOAT_VM_TEMPLATE: "1" }), true);
  assert.throws(
    () => vmTemplateEnabled({ MOAT_VM_TEMPLATE: "yes" }),
    /MOAT_VM_TEMPLATE="yes" must be 1 or 0/,
  );
  assert.throws(
    () => vmTemplateEnabled({ MOAT_CONFIG: config('{"vmTemplate": "on"}') }),
    /"vmTemplate" must be true or false/,
  );
  assert.throws(() => chooseIsolation({ env: { MOAT_CONFIG: config("[1]") } }), /one JSON object/);
});

test("a vm sandbox's first rootfs goes through 9p unless MOAT_VM_ROOTFS or vmRootfs says block", () => {
  assert.equal(vmRootfsMode({ MOAT_CONFIG: path.join(dir, "missing.json") }), "9p");
  const block = config('{"vmRootfs": "block"}');
  assert.equal(vmRootfsMode({ MOAT_CONFIG: block }), "block");
  assert.equal(vmRootfsMode({ MOAT_CONFIG: block, MOAT_VM_ROOTFS: "9p" }), "9p");
  assert.throws(() => vmRootfsMode({ MOAT_VM_ROOTFS: "virtiofs" }), /must be 9p or block/);
  assert.throws(() => vmRootfsMode({ MOAT_CONFIG: config('{"vmRootfs": "nfs"}') }), /"vmRootfs" must be/);
});

test("a VM template's maximum age comes from MOAT_VM_TEMPLATE_MAX_AGE, then the file", () => {
  assert.equal(vmTemplateMaxAge({ MOAT_CONFIG: path.join(dir, "missing.json") }), undefined);
  const file = config('{"vmTemplateMaxAge": 600}');
  assert.equal(vmTemplateMaxAge({ MOAT_CONFIG: file }), 600);
  assert.equal(vmTemplateMaxAge({ MOAT_CONFIG: file, MOAT_VM_TEMPLATE_MAX_AGE: "0" }), 0);
  assert.throws(() => vmTemplateMaxAge({ MOAT_VM_TEMPLATE_MAX_AGE: "1h" }), /whole number of seconds/);
  assert.throws(() => vmTemplateMaxAge({ MOAT_CONFIG: config('{"vmTemplateMaxAge": -1}') }), /whole number/);
});

test("auto: a vm only with hardware virtualisation, else the userkernel, with the reason", () => {
  const kvm = { available: true, reason: "kvm", hardware: true };
  const tcg = { available: true, reason: "tcg: no /dev/kvm", hardware: false };
  const uk = { available: true, reason: "ptrace" };
  const none = { available: false, reason: "no ptrace" };
  assert.deepEqual(explainAuto({ vm: kvm, userkernel: uk }), { picks: "vm", why: "vm: kvm" });
  const onTcg = explainAuto({ vm: tcg, userkernel: uk });
  assert.equal(onTcg.picks, "userkernel");
  assert.match(onTcg.why, /tcg: no \/dev\/kvm.*no hardware virtualisation/);
  const nothing = explainAuto({ vm: { available: false, reason: "no qemu" }, userkernel: none });
  assert.equal(nothing.picks, undefined);
  assert.match(nothing.why, /no qemu.*no ptrace/);
});

test("moat doctor says which isolation auto picks on this host, as selectBackend does", async () => {
  const main = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
  const r = spawnSync(process.execPath, [main, "--json", "doctor"], {
    encoding: "utf8",
    env: { ...process.env, MOAT_CONFIG: path.join(dir, "missing.json"), MOAT_ISOLATION: "" },
  });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { default: string; auto: { picks?: string; why: string } };
  assert.equal(report.default, "auto");
  const picked = await selectBackend("auto").then(
    (b) => b.isolation,
    () => undefined,
  );
  assert.equal(report.auto.picks, picked);
  const vm = await availability("vm");
  if (report.auto.picks === "userkernel") assert.ok(report.auto.why.includes(vm.reason), report.auto.why);
});
