// moat's command lines as a person types them: every command answers -h/--help with its
// flags (the table its parser uses), `moat help CMD` too, usage errors are clean and exit
// 125 (docker's code for its own errors), and the bash completion and the PATH links work.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import * as specs from "../../src/cli/command-specs.js";
import type { CommandSpec } from "../../src/cli/flags.js";
import { RUN } from "../../src/cli/run-options.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

after(cleanupTempDirs);

const MAIN = new URL("../../src/cli/main.js", import.meta.url).pathname;
const REPO = path.resolve(path.dirname(MAIN), "../../..");

const ALL: CommandSpec[] = [...Object.values(specs), RUN];

describe("moat's flags, help and usage errors", () => {
  const root = path.join(tempDir(), "root");
  const moat = (args: string[], input = "") =>
    spawnSync(process.execPath, [MAIN, "--root", root, ...args], {
      encoding: "utf8",
      input,
      timeout: 60_000,
    });

  test("every command answers -h and --help with its usage and all its flags, and does nothing else", () => {
    for (const spec of ALL) {
      for (const flag of ["--help", "-h"]) {
        const r = moat([spec.name, flag]);
        assert.equal(r.status, 0, `${spec.name} ${flag}: ${r.stderr}`);
        assert.equal(r.stderr, "");
        assert.match(r.stdout, new RegExp(`^usage: moat ${spec.name}\\b`), spec.name);
        for (const [name, f] of Object.entries(spec.flags)) {
          assert.ok(r.stdout.includes(`--${name}`), `${spec.name} --help lists --${name}`);
          if (f.short) assert.ok(r.stdout.includes(`-${f.short}, --${name}`), `${spec.name}: -${f.short}`);
        }
      }
      assert.equal(moat(["help", spec.name]).stdout, moat([spec.name, "--help"]).stdout);
    }
    // gc --help printed help instead of collecting: the store was never even opened.
    assert.equal(fs.existsSync(root), false, "no command ran");
    // After the image (the container's command), --help is the container's.
    const after = moat(["run", "--isolation", "userkernel", "default", "echo", "--help"]);
    assert.equal(after.stdout, "--help\n", after.stderr);
  });

  test("moat help lists every command and run's new flags", () => {
    const r = moat(["help"]);
    assert.equal(r.status, 0);
    for (const spec of ALL) assert.match(r.stdout, new RegExp(`^  ${spec.name}\\b`, "m"), spec.name);
    for (const f of [
      "-v|--volume",
      "--mount",
      "--tmpfs",
      "--env-file",
      "--cap-add",
      "--security-opt",
      "--add-host",
    ]) {
      assert.ok(r.stdout.includes(f), f);
    }
    assert.match(r.stdout, /125 when moat itself fails/);
  });

  test("unknown flags, missing values and missing arguments are usage errors with exit 125", () => {
    const cases: [string[], string][] = [
      [["run", "--foo", "default"], "moat run: unknown flag --foo; see moat run --help"],
      [["gc", "--foo"], "moat gc: unknown flag --foo; see moat gc --help"],
      [["ps", "-z"], "moat ps: unknown flag -z; see moat ps --help"],
      [["run", "--name"], "moat run: --name needs a value (NAME); see moat run --help"],
      [["run"], "moat run: requires at least 1 argument (IMAGE|BUNDLE-DIR [CMD...]); see moat run --help"],
      [["exec"], "moat exec: requires at least 2 arguments (CONTAINER CMD...); see moat exec --help"],
      [["kill"], "moat kill: requires at least 1 argument (CONTAINER...); see moat kill --help"],
      [["gc", "extra"], 'moat gc: takes no arguments, not "extra"; see moat gc --help'],
      [["completion", "zsh"], 'moat completion: only bash is supported, not "zsh"'],
    ];
    for (const [args, message] of cases) {
      const r = moat(args);
      assert.equal(r.stderr, `${message}\n`, args.join(" "));
      assert.equal(r.status, 125, args.join(" "));
    }
    // Not runc's usage, nor `default sh`: exec and kill without arguments are moat's.
    const bare = spawnSync(process.execPath, [MAIN, "exec"], { encoding: "utf8" });
    assert.match(bare.stderr, /^moat exec: requires at least 2 arguments/);
    assert.equal(bare.status, 125);
  });

  test("-e and --env-file: NAME alone takes this shell's value or is left out; an empty name is refused", () => {
    const dir = tempDir();
    const file = path.join(dir, "env");
    fs.writeFileSync(file, "# a comment\n\nFROM_FILE=a b\nFROM_HOST\nNOT_SET_ANYWHERE\n  INDENTED=1\n");
    const r = spawnSync(
      process.execPath,
      [
        MAIN,
        "--root",
        root,
        "run",
        "--isolation",
        "userkernel",
        "--env-file",
        file,
        "-e",
        "PASSED",
        "-e",
        "UNSET_HERE",
        "-e",
        "LITERAL=x=y",
        "default",
        "env",
      ],
      {
        encoding: "utf8",
        env: {
          ...process.env,
          PASSED: "from host",
          FROM_HOST: "h",
          UNSET_HERE: undefined,
        } as NodeJS.ProcessEnv,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const env = r.stdout.split("\n");
    for (const line of ["PASSED=from host", "FROM_FILE=a b", "FROM_HOST=h", "INDENTED=1", "LITERAL=x=y"]) {
      assert.ok(env.includes(line), line);
    }
    for (const name of ["UNSET_HERE", "NOT_SET_ANYWHERE"]) {
      assert.ok(!env.some((l) => l === name || l.startsWith(`${name}=`)), `${name} is left out`);
    }
    const bad = moat(["run", "-e", "=x", "default", "true"]);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /-e "=x" has no variable name/);
    fs.writeFileSync(file, "=oops\n");
    const badFile = moat(["run", "--env-file", file, "default", "true"]);
    assert.equal(badFile.status, 125);
    assert.match(badFile.stderr, /line 1: "=oops" has no variable name/);
  });

  test("a directory without config.json is not an OCI bundle; -it from a pipe is refused", () => {
    const dir = tempDir();
    const r = spawnSync(process.execPath, [MAIN, "--root", root, "run", "."], {
      encoding: "utf8",
      cwd: dir,
    });
    assert.equal(
      r.stderr.split("\n")[0],
      "moat: . is not an OCI bundle: it has no config.json (make one with moat bundle IMAGE DIR, or give an image name)",
    );
    assert.equal(r.status, 125);
    const sub = moat(["run", dir]);
    assert.match(sub.stderr, /is not an OCI bundle: it has no config.json/);
    const it = moat(["run", "-it", "--isolation", "vm", "default", "sh"], "echo hi\n");
    assert.equal(it.stderr, "moat: the input device is not a TTY: drop -t, or run it from a terminal\n");
    assert.equal(it.status, 125);
    assert.deepEqual(fs.readdirSync(path.join(root, "bundles")), [], "nothing was made");
  });
});

describe("bash completion and the PATH", () => {
  test("moat completion bash lists the commands and run's flags, and bash can source it", () => {
    const script = spawnSync(process.execPath, [MAIN, "completion", "bash"], { encoding: "utf8" });
    assert.equal(script.status, 0, script.stderr);
    const bash = (body: string) =>
      spawnSync("bash", ["-c", `source /dev/stdin <<'EOF'\n${script.stdout}\nEOF\n${body}`], {
        encoding: "utf8",
      });
    assert.equal(bash("complete -p moat").stdout, "complete -o filenames -F _moat moat\n");
    const complete = (...words: string[]) =>
      bash(
        `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _moat; printf '%s\\n' "\${COMPREPLY[@]}"`,
      )
        .stdout.split("\n")
        .filter(Boolean);
    const commands = complete("moat", "");
    for (const spec of ALL) assert.ok(commands.includes(spec.name), spec.name);
    const runFlags = complete("moat", "run", "--");
    for (const name of Object.keys(RUN.flags)) assert.ok(runFlags.includes(`--${name}`), `--${name}`);
    assert.deepEqual(complete("moat", "run", "--isolation", ""), ["vm", "userkernel", "auto"]);
    assert.deepEqual(complete("moat", "--root", "/x", "gc", "--"), ["--help"]);
  });

  test("scripts/install-links.sh puts moat and the shim on the PATH, again and again", () => {
    const dir = tempDir();
    const env = {
      ...process.env,
      MOAT_BIN_DIR: path.join(dir, "bin"),
      MOAT_COMPLETION_DIR: path.join(dir, "comp"),
    };
    for (let i = 0; i < 2; i++) {
      const r = spawnSync(path.join(REPO, "scripts/install-links.sh"), { encoding: "utf8", env });
      assert.equal(r.status, 0, r.stderr);
    }
    const PATH = `${path.join(dir, "bin")}:${process.env.PATH}`;
    const sh = (cmd: string) =>
      spawnSync("sh", ["-c", cmd], { encoding: "utf8", env: { ...process.env, PATH } });
    assert.equal(sh("command -v moat").stdout.trim(), path.join(dir, "bin", "moat"));
    assert.equal(fs.realpathSync(path.join(dir, "bin", "moat")), MAIN);
    assert.match(sh("moat --json version").stdout, /^\{"version":"\d+\.\d+\.\d+"\}$/m);
    assert.match(sh("containerd-shim-moat-v2 -v").stdout, /containerd-shim-moat-v2:\n\s+Version:/);
    // Node 20 reads a --env-file anywhere on its command line (and dies on a missing one):
    // the bin runs as `node -- main.js`, so run's --env-file reaches moat.
    const missing = sh(
      `moat --root ${path.join(dir, "root")} run --env-file ${path.join(dir, "nope")} default true`,
    );
    assert.match(missing.stderr, /^moat: --env-file .*nope: ENOENT/);
    assert.equal(missing.status, 125);
    const sourced = sh(`bash -c 'source ${path.join(dir, "comp", "moat")}; complete -p moat'`);
    assert.equal(sourced.stdout, "complete -o filenames -F _moat moat\n");
  });
});
