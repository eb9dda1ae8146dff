// A rootfs built for the VFS and gofer tests, with a secret planted OUTSIDE it and an
// image full of names that try to reach that secret (absolute and relative symlinks,
// "..", a symlink to "/", magic links, device nodes, a FIFO).
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mknod, S_IFCHR, S_IFIFO } from "../../src/sys/fs.js";

export interface Planted {
  /** Holds `rootfs` and `outside`; remove it to clean up. */
  base: string;
  root: string;
  outside: string;
  secretPath: string;
  secret: string;
  /** "dev:ino" of every inode inside the rootfs (what the gofer may ever hand out). */
  inside: Set<string>;
}

/** Paths (relative to the rootfs) that must never reach anything outside it. */
export const HOSTILE_PATHS = [
  "evil/shadow",
  "evil/passwd-up",
  "evil/secret-abs",
  "evil/secret-rel",
  "evil/outside-dir",
  "evil/outside-dir/secret",
  "evil/rootlink",
  "evil/rootlink/etc/shadow",
  "evil/dotdot/dotdot/dotdot/outside/secret",
  "evil/proc-escape",
  "../outside/secret",
  "../../outside/secret",
  "evil/../../outside/secret",
  "/../outside/secret",
  "./../outside/secret",
  "data/sub/../../../outside/secret",
];

export function buildRootfs(): Planted {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "moat-vfs-test-"));
  const root = path.join(base, "rootfs");
  const outside = path.join(base, "outside");
  fs.mkdirSync(outside);
  const secret = `TOP-SECRET-${randomBytes(16).toString("hex")}`;
  const secretPath = path.join(outside, "secret");
  fs.writeFileSync(secretPath, secret);
  const w = (rel: string, content: string, mode = 0o644): void => {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content, { mode });
    fs.chmodSync(p, mode);
  };
  w("etc/hello", "hello from the image\n");
  w("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  w("etc/private", "only for uid 1000\n", 0o600);
  fs.chownSync(path.join(root, "etc/private"), 1000, 1000);
  w("usr/bin/tool", "#!/bin/sh\necho tool\n", 0o755);
  fs.symlinkSync("usr/bin", path.join(root, "bin"));
  w("data/a.txt", "A".repeat(100));
  w("data/b.txt", "B".repeat(5000));
  w("data/sub/c.txt", "c");
  fs.mkdirSync(path.join(root, "data/empty"));
  fs.mkdirSync(path.join(root, "evil"));
  const link = (target: string, name: string): void => fs.symlinkSync(target, path.join(root, "evil", name));
  link("/etc/shadow", "shadow");
  link("../../../../etc/passwd", "passwd-up");
  link(secretPath, "secret-abs");
  link("../../outside/secret", "secret-rel");
  link(outside, "outside-dir");
  link("/", "rootlink");
  link("..", "dotdot");
  link(`/proc/self/root${secretPath}`, "proc-escape");
  link("loop2", "loop1");
  link("loop1", "loop2");
  link("self", "self");
  mknod(path.join(root, "evil/zero"), S_IFCHR, 0o666, 1, 5);
  mknod(path.join(root, "evil/fifo"), S_IFIFO, 0o644);
  // Mount points the image gets wrong: /dev a file, /tmp a dangling symlink.
  w("dev", "not a directory");
  fs.symlinkSync("/nowhere", path.join(root, "tmp"));
  // Linux follows at most 40 symlinks per lookup: a0..a39 is 40 links, b0..b40 is 41.
  fs.mkdirSync(path.join(root, "chain"));
  for (const [prefix, n] of [
    ["a", 40],
    ["b", 41],
  ] as const)
    for (let i = 0; i < n; i++)
      fs.symlinkSync(
        i === n - 1 ? "../etc/hello" : `${prefix}${i + 1}`,
        path.join(root, "chain", `${prefix}${i}`),
      );
  const inside = new Set<string>();
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    inside.add(`${st.dev}:${st.ino}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(root);
  return { base, root, outside, secretPath, secret, inside };
}

export function removeRootfs(p: Planted): void {
  fs.rmSync(p.base, { recursive: true, force: true });
}
