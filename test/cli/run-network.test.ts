// `moat run --network` and `-p`, as a person types them: bad values are refused before
// anything starts, and a vm sandbox without a network has only loopback.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { parseNetwork, parsePortForward } from "../../src/cli/run.js";
import { isMoatError } from "../../src/spec/errors.js";
import { cleanupTempDirs, mountsUnder, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

const MAIN = new URL("../../src/cli/main.js", import.meta.url).pathname;

describe("moat run --network and -p", () => {
  const root = tempDir();
  const moat = (args: string[]) =>
    spawnSync(process.execPath, [MAIN, "--root", root, ...args], { encoding: "utf8", input: "" });

  test("parses port forwards and networks", () => {
    assert.deepEqual(parsePortForward("8080:80"), { host: 8080, guest: 80 });
    assert.deepEqual(parsePortForward("65535:1"), { host: 65535, guest: 1 });
    for (const bad of ["80", "0:80", "80:0", "70000:80", "a:b", "127.0.0.1:80:80", "-1:80"]) {
      assert.throws(
        () => parsePortForward(bad),
        (e: unknown) => isMoatError(e, "EINVAL") && e.message.includes("HOST:GUEST"),
        bad,
      );
    }
    assert.equal(parseNetwork("none"), "none");
    assert.equal(parseNetwork("nat"), "nat");
    assert.throws(() => parseNetwork("host"), /use nat \(the default\) or none/);
  });

  test("refuses bad values before anything starts", async () => {
    const n = moat(["run", "--isolation", "vm", "--network", "bridge", "default", "true"]);
    assert.equal(n.status, 125);
    assert.match(n.stderr, /--network "bridge" is not a network/);
    const p = moat(["run", "--isolation", "vm", "-p", "99999:80", "default", "true"]);
    assert.equal(p.status, 125);
    assert.match(p.stderr, /-p "99999:80" is not a port forward/);
    const both = moat(["run", "--isolation", "vm", "--network", "none", "-p", "8080:80", "default", "true"]);
    assert.equal(both.status, 125);
    assert.match(both.stderr, /-p needs a network/);
    assert.deepEqual(await fs.readdir(path.join(root, "bundles")).catch(() => []), []);
  });

  test("--network none gives a vm sandbox loopback only; the default gives it eth0", () => {
    const none = moat(["run", "--isolation", "vm", "--network", "none", "default", "cat", "/proc/net/dev"]);
    assert.equal(none.status, 0, none.stderr);
    assert.match(none.stdout, /^\s*lo:/m);
    assert.doesNotMatch(none.stdout, /eth0/);
    const nat = moat(["run", "--isolation", "vm", "default", "cat", "/proc/net/dev"]);
    assert.equal(nat.status, 0, nat.stderr);
    assert.match(nat.stdout, /^\s*eth0:/m);
    assert.deepEqual(mountsUnder(root), []);
  });
});
