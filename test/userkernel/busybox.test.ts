// Debian's busybox-static, unmodified, in moat's built-in image, run by the userkernel
// against the image's rootfs through the VFS and the gofer.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { isMoatError } from "../../src/spec/errors.js";
import { UTS_RELEASE } from "../../src/userkernel/syscalls/identity.js";
import { type BusyboxBundle, busyboxBundle, runIn } from "./rootfs-run.js";

describe("busybox in the built-in image", () => {
  let b: BusyboxBundle;
  const note = `a note from the test ${process.pid}\nsecond line\n`;
  before(async () => {
    b = await busyboxBundle();
    fs.writeFileSync(path.join(b.rootfs, "etc", "note.txt"), note);
    const script = (name: string, text: string): void => {
      fs.writeFileSync(path.join(b.rootfs, "bin", name), text);
      fs.chmodSync(path.join(b.rootfs, "bin", name), 0o755);
    };
    script("greet", '#!/bin/sh -e\necho "greet $0 $1"\n');
    script("nointerp", "#!/no/such/shell\necho never\n");
  });
  after(() => b.remove());

  it("echo", async () => {
    const r = await runIn(b.rootfs, ["echo", "hi"]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "hi\n");
  });

  it("cat of a file in the image, and wc -l of it", async () => {
    const r = await runIn(b.rootfs, ["cat", "/etc/note.txt"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, note);
    const wc = await runIn(b.rootfs, ["wc", "-l", "/etc/note.txt"]);
    assert.equal(wc.stdout.trim(), "2 /etc/note.txt");
  });

  it("ls -la / lists the image's top directories with their modes", async () => {
    const r = await runIn(b.rootfs, ["ls", "-la", "/"]);
    assert.equal(r.code, 0, r.stderr);
    for (const name of fs.readdirSync(b.rootfs)) {
      const st = fs.lstatSync(path.join(b.rootfs, name));
      if (!st.isDirectory()) continue;
      const mode = (st.mode & 0o777).toString(8);
      const line = r.stdout.split("\n").find((l) => l.endsWith(` ${name}`));
      assert.ok(line, `no line for ${name} in:\n${r.stdout}`);
      const perms = line.slice(1, 10);
      const bits = [...perms].map((c) => (c === "-" || c === "T" || c === "S" ? "0" : "1")).join("");
      // tmp, proc and dev are the kernel's own mounts, not the image's directories.
      if (!["tmp", "proc", "dev"].includes(name))
        assert.equal(Number.parseInt(bits, 2).toString(8), mode, line);
      assert.ok(line.startsWith("d"), line);
    }
    assert.match(r.stdout, /^lrwxrwxrwx .* linuxrc -> bin\/busybox$/m);
    assert.match(r.stdout, /^drwxrwxrwt .* tmp$/m);
  });

  it("wc -l counts lines of stdin piped from the host", async () => {
    const r = await runIn(b.rootfs, ["wc", "-l"], { input: "a\nb\nc\n" });
    assert.equal(r.stdout.trim(), "3");
  });

  it("cat copies stdin piped from the host", async () => {
    // Printable bytes, so the captured text is the bytes themselves.
    const input = Buffer.alloc(200_000);
    for (let i = 0; i < input.length; i++) input[i] = 32 + ((i * 31) % 95);
    const r = await runIn(b.rootfs, ["cat"], { input });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, input.toString("latin1"));
  });

  it("sha256sum /bin/busybox matches the host's busybox it was built from", async () => {
    const r = await runIn(b.rootfs, ["sha256sum", "/bin/busybox"]);
    const host = createHash("sha256").update(fs.readFileSync("/bin/busybox")).digest("hex");
    assert.equal(r.stdout, `${host}  /bin/busybox\n`);
  });

  it("uname -a shows moat's kernel, not the host's", async () => {
    const r = await runIn(b.rootfs, ["uname", "-a"], { hostname: "box" });
    assert.match(r.stdout, new RegExp(`^Linux box ${UTS_RELEASE.replaceAll(".", "\\.")} `));
    assert.ok(!r.stdout.includes(os.release()), r.stdout);
  });

  it("env shows exactly the environment given", async () => {
    const env = ["PATH=/bin:/usr/bin", "GREETING=hello there", "EMPTY="];
    const r = await runIn(b.rootfs, ["env"], { env });
    assert.equal(r.stdout, `${env.join("\n")}\n`);
  });

  it("false exits 1, true exits 0", async () => {
    assert.equal((await runIn(b.rootfs, ["false"])).code, 1);
    assert.equal((await runIn(b.rootfs, ["true"])).code, 0);
  });

  it("sh writes to /tmp and execs cat to read it back", async () => {
    const r = await runIn(b.rootfs, ["sh", "-c", "echo a > /tmp/x; cat /tmp/x"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "a\n");
    assert.equal(fs.existsSync(path.join(b.rootfs, "tmp", "x")), false);
  });

  it("runs #! scripts, directly and through sh's exec", async () => {
    const direct = await runIn(b.rootfs, ["greet", "you"]);
    assert.equal(direct.code, 0, direct.stderr);
    assert.equal(direct.stdout, "greet /bin/greet you\n");
    const viaExec = await runIn(b.rootfs, ["sh", "-c", "exec greet again"]);
    assert.equal(viaExec.stdout, "greet /bin/greet again\n");
    await assert.rejects(
      runIn(b.rootfs, ["nointerp"]),
      (e) => isMoatError(e, "ENOENT") && /#!/.test(e.message),
    );
    const missing = await runIn(b.rootfs, ["sh", "-c", "exec nointerp"]);
    assert.notEqual(missing.code, 0);
    assert.equal(missing.stdout, "");
  });

  it("sh cd and pwd", async () => {
    const r = await runIn(b.rootfs, ["sh", "-c", "cd /etc && pwd"]);
    assert.equal(r.stdout, "/etc\n");
  });

  it("runs in the given cwd, as the given user, with the given umask", async () => {
    const as = { cwd: "/etc", uid: 1000, gid: 1001, additionalGids: [2000, 2001], umask: 0o027 };
    // One process per run (no fork yet): sh runs builtins and execs its last command.
    assert.equal((await runIn(b.rootfs, ["pwd"], as)).stdout, "/etc\n");
    assert.equal((await runIn(b.rootfs, ["id"], as)).stdout, "uid=1000 gid=1001 groups=2000,2001\n");
    const r = await runIn(b.rootfs, ["sh", "-c", "umask; echo > /tmp/f; stat -c '%a %u %g' /tmp/f"], as);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "0027\n640 1000 1001\n");
    // A user may not write where the image does not let them.
    const denied = await runIn(b.rootfs, ["sh", "-c", "echo x > /etc/x"], { uid: 1000, gid: 1000 });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Permission denied/);
  });

  it("says clearly when the program or the cwd is missing", async () => {
    await assert.rejects(runIn(b.rootfs, ["no-such-program"]), (e) => isMoatError(e, "ENOENT"));
    await assert.rejects(runIn(b.rootfs, ["true"], { cwd: "/nope" }), (e) => isMoatError(e, "ENOENT"));
  });
});
