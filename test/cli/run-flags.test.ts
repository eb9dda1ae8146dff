// moat run's docker flags on real sandboxes: volumes (host paths and named ones), --mount,
// --tmpfs, --ulimit, --entrypoint, --label, --add-host, --dns, the /etc files and HOME and
// HOSTNAME every container gets, --read-only, capabilities, seccomp, --pids-limit and
// --init (vm), --stop-signal and --stop-timeout as moat kill reads them, and every flag an
// isolation cannot honour refused with its reason before anything is made.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { MAIN, cli as moatCli } from "../helpers/moat-cli.js";
import { cleanupTempDirs, mountsUnder, tempDir } from "../helpers/tmp.js";

const cli = (root: string) => moatCli(root, 300000);

after(cleanupTempDirs);

const HOSTS = [
  "127.0.0.1\tlocalhost",
  "::1\tlocalhost ip6-localhost ip6-loopback",
  "fe00::0\tip6-localnet",
  "ff00::0\tip6-mcastprefix",
  "ff02::1\tip6-allnodes",
  "ff02::2\tip6-allrouters",
  "127.0.1.1\tbox",
  "10.0.0.5\tdb",
];

/** Host paths for the volumes: a read-only one with a file, a read-write one. */
function volumes() {
  const dir = tempDir();
  const ro = path.join(dir, "ro");
  const rw = path.join(dir, "rw");
  fs.mkdirSync(ro);
  fs.mkdirSync(rw);
  fs.writeFileSync(path.join(ro, "f"), "from host\n");
  return { ro, rw };
}

describe("moat run's flags, userkernel", () => {
  const root = tempDir();
  const moat = cli(root);

  test("volumes, --mount, --tmpfs, --ulimit, --add-host, --dns, --entrypoint, --label, --read-only, the /etc files, HOME", () => {
    const { ro, rw } = volumes();
    // Builtins only: the userkernel has no fork yet, so the shell reads files with `read`.
    const script = [
      'for f in /etc/hosts /etc/hostname /etc/resolv.conf /ro/f; do while IFS= read -r l; do echo "$l"; done < $f; done',
      'echo "$HOME $HOSTNAME"',
      "ulimit -n; ulimit -Hn",
      "echo x > /ro/g || echo ro-refused",
      "echo written > /rw/out",
      "echo in-volume > /named/v",
      "echo t > /t1/a && echo t > /t2/a && echo tmpfs-ok",
      "echo more >> /etc/hosts && echo hosts-writable",
      // --read-only: the root refuses changes; /tmp and /dev/shm (tmpfs) do not.
      "echo x > /rootfile || echo root-ro",
      "echo t > /tmp/a && echo t > /dev/shm/a && echo tmp-writable",
    ].join("; ");
    const r = moat([
      "run",
      "--isolation",
      "userkernel",
      "--keep",
      "--hostname",
      "box",
      "-v",
      `${ro}:/ro:ro`,
      "--mount",
      `type=bind,source=${rw},target=/rw`,
      "-v",
      "myvol:/named",
      "--tmpfs",
      "/t1:size=1m",
      "--mount",
      "type=tmpfs,target=/t2,tmpfs-size=1m",
      "--ulimit",
      "nofile=100:200",
      "--add-host",
      "db:10.0.0.5",
      "--dns",
      "192.0.2.53",
      "--entrypoint",
      "/bin/sh",
      "--label",
      "team=blue",
      "--read-only",
      "default",
      "-c",
      script,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.split("\n"), [
      ...HOSTS,
      "box",
      "nameserver 192.0.2.53",
      "from host",
      "/root box",
      "100",
      "200",
      "ro-refused",
      "tmpfs-ok",
      "hosts-writable",
      "root-ro",
      "tmp-writable",
      "",
    ]);
    assert.match(r.stderr, /\/rootfile: Read-only file system/);
    assert.equal(fs.readFileSync(path.join(rw, "out"), "utf8"), "written\n");
    assert.equal(fs.readFileSync(path.join(root, "volumes", "myvol", "v"), "utf8"), "in-volume\n");
    assert.deepEqual(fs.readdirSync(ro), ["f"]);
    // --entrypoint and --label are in the container's spec (the kept bundle's config.json).
    const [bundle] = fs.readdirSync(path.join(root, "bundles"));
    const spec = JSON.parse(fs.readFileSync(path.join(root, "bundles", bundle!, "config.json"), "utf8"));
    assert.deepEqual(spec.process.args.slice(0, 2), ["/bin/sh", "-c"]);
    assert.equal(spec.annotations.team, "blue");
    assert.equal(spec.root.readonly, true);
    spawnSync(process.execPath, [
      MAIN,
      "--root",
      root,
      "bundle",
      "--remove",
      path.join(root, "bundles", bundle!),
    ]);
  });

  test("what the userkernel cannot honour is refused before anything is made", () => {
    const dir = tempDir();
    const profile = path.join(dir, "seccomp.json");
    fs.writeFileSync(profile, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW" }));
    const cases: [string[], string][] = [
      [
        ["--cap-add", "NET_ADMIN"],
        "--cap-add/--cap-drop is not applied by the userkernel yet: use --isolation vm",
      ],
      [
        ["--cap-drop", "ALL"],
        "--cap-add/--cap-drop is not applied by the userkernel yet: use --isolation vm",
      ],
      [
        ["--security-opt", `seccomp=${profile}`],
        "--security-opt seccomp is not applied by the userkernel yet: use --isolation vm",
      ],
      [["--pids-limit", "10"], "--pids-limit is not applied by the userkernel yet: use --isolation vm"],
      [
        ["--init"],
        "--init: the userkernel has no init to put in front of the command yet: use --isolation vm",
      ],
    ];
    for (const [flags, message] of cases) {
      const r = moat(["run", "--isolation", "userkernel", ...flags, "default", "true"]);
      assert.equal(r.status, 125, flags.join(" "));
      assert.ok(r.stderr.startsWith(`moat: ${message}`), `${flags.join(" ")}: ${r.stderr}`);
    }
    // A refused run makes nothing, not even the named volume it asked for.
    const refused = moat([
      "run",
      "--isolation",
      "userkernel",
      "--init",
      "-v",
      "refusedvol:/v",
      "default",
      "true",
    ]);
    assert.equal(refused.status, 125);
    assert.equal(fs.existsSync(path.join(root, "volumes", "refusedvol")), false);
    // seccomp=unconfined and no-new-privileges are what the userkernel does anyway.
    const ok = moat([
      "run",
      "--isolation",
      "userkernel",
      "--security-opt",
      "seccomp=unconfined",
      "--security-opt",
      "no-new-privileges",
      "default",
      "true",
    ]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(fs.readdirSync(path.join(root, "bundles")), []);
    assert.deepEqual(mountsUnder(root), []);
  });

  test("bad flag values are refused with what to do", () => {
    const bad: [string[], RegExp][] = [
      [
        ["-v", "relative/x:/y"],
        /-v relative\/x:\/y: "relative\/x" is neither an absolute host path nor a volume name/,
      ],
      [
        ["-v", "/no/such/dir:/y"],
        /-v \/no\/such\/dir:\/y: \/no\/such\/dir does not exist on this host: create it first/,
      ],
      [["-v", "/tmp:rel"], /the container path "rel" must be absolute/],
      [["-v", "/tmp:/y:rx"], /the mode is ro or rw, not "rx"/],
      [["--mount", "type=nfs,source=a,target=/b"], /type is bind, volume or tmpfs, not "nfs"/],
      [["--mount", "type=bind,source=/tmp"], /say where it goes with target=\/path/],
      [["--tmpfs", "/t:uid=0"], /"uid=0" is not a tmpfs option moat passes on/],
      [["--ulimit", "nofile=2:1"], /the soft limit is above the hard one/],
      [["--ulimit", "bogus=1"], /--ulimit bogus=1: use NAME=SOFT\[:HARD\]/],
      [["--cap-add", "NOT_A_CAP"], /unknown capability "NOT_A_CAP"/],
      [["--security-opt", "apparmor=x"], /--security-opt apparmor=x is not one moat applies/],
      [["--security-opt", "seccomp=/no/such.json"], /seccomp=\/no\/such.json: not a readable JSON profile/],
      [["--add-host", "db"], /--add-host db: use NAME:IP/],
      [["--dns", "one"], /--dns one is not an IP address/],
      [["--stop-signal", "NOPE"], /unknown signal "NOPE"/],
      [["--stop-timeout", "soon"], /--stop-timeout soon is not a whole number/],
      [["--label", "=v"], /--label "=v" has no key/],
      [["-v", "/tmp:/x", "--tmpfs", "/x"], /two mounts on \/x/],
    ];
    for (const [flags, message] of bad) {
      const r = moat(["run", "--isolation", "userkernel", ...flags, "default", "true"]);
      assert.equal(r.status, 125, flags.join(" "));
      assert.match(r.stderr, message, flags.join(" "));
    }
    // A bundle runs as its config.json says: flags that would change it are not dropped silently.
    const dir = path.join(tempDir(), "b");
    assert.equal(moat(["bundle", "default", dir, "true"]).status, 0);
    const r = moat(["run", "--isolation", "userkernel", "-e", "A=1", "-v", "/tmp:/x", dir]);
    assert.equal(r.status, 125);
    assert.match(
      r.stderr,
      /is a bundle: it runs as its config.json says, so --env, --volume would be ignored/,
    );
    moat(["bundle", "--remove", dir]);
  });
});

describe("moat run's flags, vm (run -d with execs on one boot, and one foreground run)", () => {
  const root = tempDir();
  const moat = cli(root);

  test("volumes, tmpfs, ulimit, capabilities, seccomp, /etc files, -e NAME, HOME; kill reads --stop-signal/--stop-timeout", () => {
    const { ro, rw } = volumes();
    const dir = tempDir();
    const profile = path.join(dir, "seccomp.json");
    fs.writeFileSync(
      profile,
      JSON.stringify({
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
      }),
    );
    // The init traps USR2 (the stop signal) and keeps running: kill must send USR2 and then,
    // after the 2 s stop timeout, KILL.
    // Its parent (PID 1 with --init) goes to /tmp/ppid.
    const init = 'echo $PPID > /tmp/ppid; trap "echo got-usr2" USR2; while :; do sleep 0.2; done';
    const started = moat(
      [
        "run",
        "-d",
        "--isolation",
        "vm",
        "--name",
        "flags",
        "--hostname",
        "box",
        "-e",
        "FROM_HOST",
        "-v",
        `${ro}:/ro:ro`,
        "-v",
        `${rw}:/rw`,
        "-v",
        "vmvol:/named",
        "--tmpfs",
        "/t1:size=1m",
        "--ulimit",
        "nofile=100:200",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_ADMIN",
        "--security-opt",
        `seccomp=${profile}`,
        "--add-host",
        "db:10.0.0.5",
        "--dns",
        "192.0.2.53",
        "--stop-signal",
        "USR2",
        "--stop-timeout",
        "2",
        "--label",
        "team=blue",
        "--read-only",
        "--pids-limit",
        "20",
        "--init",
        "default",
        "sh",
        "-c",
        init,
      ],
      { env: { ...process.env, FROM_HOST: "yes" } },
    );
    assert.equal(started.status, 0, started.stderr);
    const id = started.stdout.trim();
    const exec = (script: string) => moat(["exec", "flags", "sh", "-c", script]);

    const files = exec(
      'cat /etc/hosts /etc/hostname /etc/resolv.conf /ro/f; echo "$HOME $HOSTNAME $FROM_HOST"',
    );
    assert.equal(files.status, 0, files.stderr);
    assert.deepEqual(files.stdout.split("\n"), [
      ...HOSTS,
      "box",
      "nameserver 192.0.2.53",
      "from host",
      "/root box yes",
      "",
    ]);

    // --read-only: the root refuses writes; the volumes, tmpfs and /etc files do not.
    const writes = exec(
      "echo x > /rootfile 2>/dev/null || echo root-ro; echo x > /ro/g || echo ro-refused; echo written > /rw/out; echo v > /named/v; " +
        "dd if=/dev/zero of=/t1/big bs=1k count=2048 2>/dev/null || echo tmpfs-full; echo more >> /etc/hosts && echo hosts-writable",
    );
    assert.equal(writes.stdout, "root-ro\nro-refused\ntmpfs-full\nhosts-writable\n", writes.stderr);
    const rootWrite = exec("touch /rootfile");
    assert.notEqual(rootWrite.status, 0);
    assert.match(rootWrite.stderr, /Read-only file system/);

    // --pids-limit is the container cgroup's pids.max; --init puts moat's init at PID 1 with
    // the command as its child (so the USR2 below reaches the command only if it forwards it).
    const pids = exec("cat /sys/fs/cgroup/pids.max /proc/1/comm /tmp/ppid");
    assert.equal(pids.stdout, "20\nmoat-init\n1\n", pids.stderr);
    assert.equal(fs.readFileSync(path.join(rw, "out"), "utf8"), "written\n");
    assert.equal(fs.readFileSync(path.join(root, "volumes", "vmvol", "v"), "utf8"), "v\n");
    assert.deepEqual(fs.readdirSync(ro), ["f"]);

    // The init's limits and capabilities (an exec gets its own process spec).
    const limits = exec("ulimit -n; ulimit -Hn; grep -E '^Cap(Eff|Bnd)' /proc/1/status");
    assert.equal(
      limits.stdout,
      // CAP_NET_ADMIN alone is bit 12.
      "100\n200\nCapEff:\t0000000000001000\nCapBnd:\t0000000000001000\n",
      limits.stderr,
    );
    // The profile (execs run under it too, as with runc) denies mkdir with EPERM.
    const seccomp = exec("grep Seccomp: /proc/1/status; mkdir /tmp/m 2>&1 || echo mkdir-denied");
    assert.match(seccomp.stdout, /^Seccomp:\t2$/m, "the init runs under a seccomp filter");
    assert.match(seccomp.stdout, /Operation not permitted\nmkdir-denied\n$/);

    const spec = JSON.parse(fs.readFileSync(path.join(root, "bundles", id, "config.json"), "utf8"));
    assert.equal(spec.annotations.team, "blue");
    assert.equal(spec.annotations["run.moat.stop-signal"], "USR2");
    assert.equal(spec.annotations["run.moat.stop-timeout"], "2");
    assert.equal(spec.annotations["run.moat.init"], "true");
    assert.equal(spec.root.readonly, true);
    assert.deepEqual(spec.linux.resources, { pids: { limit: 20 } });
    const inspected = moat(["inspect", "flags"]);
    assert.equal(inspected.status, 0, inspected.stderr);
    const host = JSON.parse(inspected.stdout)[0].HostConfig;
    assert.deepEqual([host.ReadonlyRootfs, host.PidsLimit, host.Init], [true, 20, true]);

    const t0 = Date.now();
    const killed = moat(["kill", "flags"]);
    const took = Date.now() - t0;
    assert.equal(killed.status, 0, killed.stderr);
    assert.ok(took < 9000, `KILL came after the 2 s stop timeout, not docker's 10 s (${took} ms)`);
    const logs = moat(["logs", "flags"]);
    assert.match(logs.stdout, /got-usr2/, "the stop signal was USR2");
    assert.equal(moat(["rm", "flags"]).status, 0);
    assert.deepEqual(mountsUnder(root), []);
  });

  test("a foreground run gets the same flags; -t without a terminal gives pty output, as docker's; a fork bomb stops at --pids-limit", () => {
    const { ro } = volumes();
    // At most 10 tasks: moat's init, the shell, the subshell and grep leave room for a few
    // sleeps, then fork fails with EAGAIN, as with docker's --pids-limit.
    const bomb = `(for i in ${Array.from({ length: 20 }, (_, i) => i).join(" ")}; do sleep 3 & done) 2>&1 | grep -o "can't fork.*"`;
    const r = moat(
      [
        "run",
        "-t",
        "--isolation",
        "vm",
        "-e",
        "FROM_HOST",
        "-v",
        `${ro}:/ro:ro`,
        "--add-host",
        "db:10.0.0.5",
        "--pids-limit",
        "10",
        "--init",
        "default",
        "sh",
        "-c",
        `cat /ro/f; grep db /etc/hosts; echo "$FROM_HOST"; [ -t 1 ] && echo on-a-tty; echo "ppid $PPID"; ${bomb}`,
      ],
      { env: { ...process.env, FROM_HOST: "yes" } },
    );
    assert.equal(r.status, 0, r.stderr);
    // The container's stdout is a pty (docker's -t with a pipe): its line discipline adds CRs.
    assert.equal(
      r.stdout,
      "from host\r\n10.0.0.5\tdb\r\nyes\r\non-a-tty\r\nppid 1\r\ncan't fork: Resource temporarily unavailable\r\n",
    );
    assert.deepEqual(fs.readdirSync(path.join(root, "bundles")), []);
  });

  test("a --pids-limit that is not a whole number from 1 is refused before it boots", () => {
    for (const n of ["0", "ten"]) {
      for (const detach of [[], ["-d"]]) {
        const r = moat(["run", ...detach, "--isolation", "vm", "--pids-limit", n, "default", "true"]);
        assert.equal(r.status, 125, n);
        assert.match(r.stderr, /^moat: --pids-limit/, r.stderr);
      }
    }
    assert.deepEqual(fs.readdirSync(path.join(root, "bundles")), []);
  });
});
