// The reaper every moat command runs first: the records of dead owners (a dead pid, or a pid
// now naming another process) are undone (helpers killed, mounts detached, dirs and files
// removed), a live owner's are never touched, and leases of dead processes stop pinning layers.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { processStart } from "../../src/sys/pids.js";
import { moatSync } from "../helpers/foreground.js";
import { cleanupTempDirs, mountsUnder, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

/** A pid that was just used and is now dead. */
function deadPid(): number {
  const r = spawnSync("true");
  return r.pid!;
}

function writeRecord(root: string, id: string, rec: object): string {
  fs.mkdirSync(path.join(root, "runs"), { recursive: true });
  const file = path.join(root, "runs", `${id}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({ version: 1, id, created: new Date().toISOString(), info: {}, ...rec }),
  );
  return file;
}

describe("the reaper", () => {
  test("undoes a dead owner's record and never touches a live owner's", async () => {
    const root = fs.realpathSync(tempDir());
    const init = moatSync(root, ["images"]);
    assert.equal(init.status, 0, init.stderr);
    const make = (name: string) => {
      const dir = path.join(root, "bundles", name);
      fs.mkdirSync(path.join(dir, "rootfs"), { recursive: true });
      fs.writeFileSync(path.join(dir, "file"), "x");
      execFileSync("mount", ["-t", "tmpfs", "tmpfs", path.join(dir, "rootfs")]);
      // a temp sibling, as createBundle makes before its rename
      fs.mkdirSync(`${dir}.moat-tmp-abc123`);
      const lease = path.join(root, "leases", `bundle-${name}.json`);
      fs.writeFileSync(lease, JSON.stringify({ pid: process.pid, digests: [] }));
      return { dir, lease };
    };
    const me = { pid: process.pid, start: processStart(process.pid)! };
    const live = make("live");
    const liveRec = writeRecord(root, "live", {
      owner: me,
      dirs: [live.dir],
      mounts: [path.join(live.dir, "rootfs")],
      files: [live.lease],
      helpers: [],
    });
    // A reused pid: this very process, but the record says it started at another time.
    const reused = make("reused");
    const helper = spawn("sleep", ["100"], { stdio: "ignore" });
    const bystander = spawn("sleep", ["100"], { stdio: "ignore" });
    await new Promise((r) => setTimeout(r, 200));
    const reusedRec = writeRecord(root, "reused", {
      owner: { pid: process.pid, start: "1" },
      dirs: [reused.dir],
      mounts: [path.join(reused.dir, "rootfs")],
      files: [reused.lease],
      // the bystander's start is wrong: a pid reused by another process is not the helper
      helpers: [
        { pid: helper.pid, start: processStart(helper.pid!) },
        { pid: bystander.pid, start: "1" },
      ],
    });
    const dead = make("dead");
    // write-file-atomic's temp file beside the lease, left by a kill mid-write
    fs.writeFileSync(`${dead.lease}.2419511662`, "{");
    const deadRec = writeRecord(root, "dead", {
      owner: { pid: deadPid(), start: "5" },
      dirs: [dead.dir],
      mounts: [],
      files: [dead.lease],
      helpers: [],
    });
    // A record half-written by a writer that died, and one that is not JSON: no failure.
    fs.writeFileSync(path.join(root, "runs", `x.json.${deadPid()}.tmp`), "{");
    fs.writeFileSync(path.join(root, "runs", "broken.json"), "{");

    const r = moatSync(root, ["--debug", "images"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /reaped dead run reused: killed helper \d+; unmounted /);
    assert.match(r.stderr, /reaped dead run dead: /);
    helper.kill();
    bystander.kill();
    await new Promise((res) => setTimeout(res, 100));

    // the live owner's: all there, mount included
    assert.ok(fs.existsSync(liveRec));
    assert.ok(fs.existsSync(path.join(live.dir, "file")));
    assert.ok(fs.existsSync(live.lease));
    assert.deepEqual(mountsUnder(live.dir), [path.join(live.dir, "rootfs")]);
    // the dead ones': gone, mounts first
    for (const x of [reused, dead]) {
      assert.equal(fs.existsSync(x.dir), false);
      assert.equal(fs.existsSync(`${x.dir}.moat-tmp-abc123`), false);
      assert.equal(fs.existsSync(x.lease), false);
      assert.deepEqual(mountsUnder(x.dir), []);
    }
    assert.equal(fs.existsSync(`${dead.lease}.2419511662`), false);
    assert.equal(fs.existsSync(reusedRec), false);
    assert.equal(fs.existsSync(deadRec), false);
    assert.equal(helper.signalCode ?? "", "SIGKILL", "the recorded helper was not killed");
    assert.equal(
      bystander.signalCode,
      "SIGTERM",
      "a process with the helper's pid but another start was killed",
    );
    assert.deepEqual(
      fs.readdirSync(path.join(root, "runs")).sort(),
      ["broken.json", "live.json"],
      "the dead writer's temp record stays",
    );
    execFileSync("umount", [path.join(live.dir, "rootfs")]);
  });

  test("leases of dead processes stop pinning layers; a bundle's lease lives as long as its bundle", () => {
    const root = fs.realpathSync(tempDir());
    assert.equal(moatSync(root, ["images"]).status, 0);
    const leases = path.join(root, "leases");
    const put = (name: string, lease: object) =>
      fs.writeFileSync(
        path.join(leases, `${name}.json`),
        JSON.stringify({ digests: ["sha256:aa"], ...lease }),
      );
    const kept = path.join(root, "a-bundle");
    fs.mkdirSync(kept);
    const dead = deadPid();
    put("pull-dead", { pid: dead });
    put("pull-reused", { pid: process.pid, start: "1" });
    put("pull-live", { pid: process.pid, start: processStart(process.pid) });
    put("bundle-gone", { pid: dead, bundle: path.join(root, "no-such-bundle") });
    put("bundle-kept", { pid: dead, bundle: kept });
    put("bundle-live", { pid: process.pid, bundle: path.join(root, "being-made") });
    put("bundle-old", { pid: dead }); // an older moat's: no bundle named, kept
    const r = moatSync(root, ["--debug", "images"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(leases).sort(), [
      "bundle-kept.json",
      "bundle-live.json",
      "bundle-old.json",
      "pull-live.json",
    ]);
  });
});
