// The README's examples, walked literally: every line of its `sh` blocks (but the set-up
// commands, which CI has just run) runs in bash, in order, as a newcomer would type it, with
// `moat` on the PATH. What a machine without network lacks is stood in for by real local
// parts, never by skipping a line:
//   - docker.io: a docker-registry on loopback named as its mirror in moat's host
//     configuration (registryMirrors), holding library/alpine (a small multi-platform image
//     made here: its content is not Alpine's) and library/busybox (moat's built-in busybox);
//   - 127.0.0.1:5000: a docker-registry with basic auth for user:pass, holding app:1;
//   - containerd: a private containerd whose address ctr takes from CONTAINERD_ADDRESS.
// A line passes when it exits 0; long-running lines (a foreground server, logs -f, a
// terminal session) are driven as a person would: probe, type, then Ctrl-C.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { saveImages } from "../../src/image/archive.js";
import { DEFAULT_IMAGE, ensureDefaultImage } from "../../src/image/default-image.js";
import { DEFAULT_ROOT, ImageStore } from "../../src/image/store.js";
import { type Containerd, MOAT_MAIN, startContainerd } from "../helpers/containerd.js";
import { makeLayer, writeOciLayout } from "../helpers/layout.js";
import { pushLayout, startRegistry, type TestRegistry } from "../helpers/registry.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";

const README = fs.readFileSync(new URL("../../../README.md", import.meta.url), "utf8");

/** The lines of every ```sh block, but those of the set-up section. */
export function readmeLines(text: string): string[] {
  const lines: string[] = [];
  for (const m of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const block = m[1]!;
    if (block.includes("scripts/setup.sh")) continue;
    for (const l of block.split("\n")) if (l.trim() && !l.trim().startsWith("#")) lines.push(l.trim());
  }
  return lines;
}

const work = tempDir("moat-readme-");
const root = path.join(work, "root");
const cwd = path.join(work, "cwd");
const bin = path.join(work, "bin");
let mirror: TestRegistry;
let authed: TestRegistry;
let ctd: Containerd;
let env: NodeJS.ProcessEnv;

before(async () => {
  fs.mkdirSync(root, { recursive: true });
  fs.mkdirSync(cwd);
  fs.mkdirSync(bin);
  // This checkout's moat, as setup.sh puts it on the PATH; the guest assets setup.sh built.
  fs.writeFileSync(path.join(bin, "moat"), `#!/bin/sh\nexec "${process.execPath}" "${MOAT_MAIN}" "$@"\n`, {
    mode: 0o755,
  });
  fs.symlinkSync(path.join(DEFAULT_ROOT, "assets"), path.join(root, "assets"));

  const src = await ImageStore.open(tempDir());
  await ensureDefaultImage(src);
  const busybox = path.join(tempDir(), "busybox");
  await saveImages(src, [DEFAULT_IMAGE], busybox, { directory: true });
  const alpine = await writeOciLayout(path.join(tempDir(), "alpine"), {
    layers: [await makeLayer({ "etc/motd": "a stand-in for alpine, made by the README test\n" })],
    config: { config: { Cmd: ["sh"] } },
    tag: "3.20",
    index: true,
  });
  mirror = await startRegistry("plain");
  await pushLayout(alpine.dir, mirror.addr, "library/alpine:3.20");
  await pushLayout(alpine.dir, mirror.addr, "library/alpine:latest", undefined, "3.20");
  await pushLayout(busybox, mirror.addr, "library/busybox:latest", undefined, DEFAULT_IMAGE);
  authed = await startRegistry("htpasswd", { username: "user", password: "pass" }, 5000);
  await pushLayout(busybox, authed.addr, "app:1", authed.creds, DEFAULT_IMAGE);
  const config = path.join(work, "config.json");
  fs.writeFileSync(config, JSON.stringify({ registryMirrors: { "docker.io": [mirror.addr] } }));

  ctd = await startContainerd({ namespaces: ["default"] });
  env = {
    ...process.env,
    PATH: `${bin}:${ctd.dir}/bin:${process.env.PATH}`,
    MOAT_ROOT: root,
    MOAT_CONFIG: config,
    CONTAINERD_ADDRESS: ctd.address,
  };
});

/** Every line's process group, killed at the end whatever a failed line left running. */
const started: ChildProcess[] = [];

after(async () => {
  for (const c of started) {
    try {
      process.kill(-c.pid!, "SIGKILL");
    } catch {
      // that line's processes are gone
    }
  }
  spawnSync("moat", ["rm", "-f", "web"], { env, timeout: 60_000 });
  await ctd?.stop();
  await mirror?.stop();
  await authed?.stop();
  spawnSync("bash", ["-c", "moat bundle --remove /tmp/b"], { env });
  cleanupTempDirs();
});

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

/** Starts a line in bash, in its own process group (as a terminal's job), collecting its output. */
function start(
  line: string,
  useTty = false,
): { child: ChildProcess; output: () => string; done: Promise<Outcome> } {
  const argv = useTty ? ["script", "-qefc", line, "/dev/null"] : ["bash", "-c", line];
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
  started.push(child);
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const done = new Promise<Outcome>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, out })),
  );
  return { child, output: () => out, done };
}

async function until(
  what: string,
  ok: () => boolean | Promise<boolean>,
  ms: number,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; its output:\n${output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A key press's signal to the line's whole process group, as a terminal sends it. */
const interrupt = (c: ChildProcess) => process.kill(-c.pid!, "SIGINT");

async function runLine(line: string): Promise<void> {
  if (/^moat run -it /.test(line)) {
    // A person at a terminal: wait for the prompt (busybox then asks for the cursor position,
    // which a terminal answers and this one need not), type a command and exit.
    const r = start(line, true);
    await until("the container's shell prompt", () => /# /.test(r.output()), 180_000, r.output);
    r.child.stdin!.write("echo typed-$((6*7))\r");
    await until("the typed command's output", () => r.output().includes("typed-42"), 30_000, r.output);
    r.child.stdin!.write("exit\r");
    const o = await r.done;
    assert.equal(o.code, 0, o.out);
    return;
  }
  const server = /httpd -f -p 80$/.test(line) && !/ -d /.test(line) ? /-p (\d+):80/.exec(line) : null;
  if (server) {
    // A foreground server: it answers on the published port, then Ctrl-C ends it.
    const r = start(line);
    await until(
      `an HTTP answer on 127.0.0.1:${server[1]}`,
      async () => {
        if (r.child.exitCode !== null) throw new Error(`${line} exited: ${r.output()}`);
        return fetch(`http://127.0.0.1:${server[1]}/`).then(
          () => true,
          () => false,
        );
      },
      240_000,
      r.output,
    );
    // A server that is PID 1 of its container ignores a first ^C (as under docker without
    // --init); a person presses it again, and moat's second ^C within 3 s kills it.
    interrupt(r.child);
    const first = await Promise.race([r.done, new Promise((res) => setTimeout(res, 1500, undefined))]);
    if (first === undefined) interrupt(r.child);
    const o = await r.done;
    assert.ok(o.code !== null && o.code !== 0, `${line} should end by the Ctrl-C: ${JSON.stringify(o)}`);
    assert.doesNotMatch(o.out, /\n\s+at /, "no stack trace");
    return;
  }
  if (/^moat logs -f /.test(line)) {
    // Follows until the container stops: read for a moment, then Ctrl-C.
    const r = start(line);
    await new Promise((res) => setTimeout(res, 3000));
    assert.equal(r.child.exitCode, null, `logs -f should still follow: ${r.output()}`);
    interrupt(r.child);
    await r.done;
    return;
  }
  const r = start(line);
  r.child.stdin!.end();
  const timer = setTimeout(() => process.kill(-r.child.pid!, "SIGKILL"), 300_000);
  const o = await r.done;
  clearTimeout(timer);
  assert.equal(o.code, 0, `\`${line}\` exited ${o.code ?? o.signal}:\n${o.out}`);
}

test("the README's examples run as written", { timeout: 30 * 60_000 }, async (t) => {
  const lines = readmeLines(README);
  assert.ok(lines.length > 20, "the README has its examples");
  for (const line of lines) {
    await t.test(line, () => runLine(line));
  }
});
