// A rootfs made of the host's own dynamically linked programs: each binary at its host path,
// every shared library `ldd` lists for it (the ELF interpreter included) and the symbolic
// links on the way (Debian's /lib -> usr/lib, /lib64/ld-linux-x86-64.so.2 -> ...), so that
// the programs run in it as they run on the host. For the userkernel's dynamic ELF tests and
// for test images built from host binaries (python3 and its libraries).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "./tmp.js";

/** The absolute paths of the shared objects `ldd` lists for `file` (none for a static one). */
export function lddClosure(file: string): string[] {
  let out: string;
  try {
    out = execFileSync("ldd", [file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch {
    return []; // "not a dynamic executable" (ldd exits 1): nothing to add
  }
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m) libs.push(m[1]!);
    else if (/not found/.test(line)) throw new Error(`ldd ${file}: ${line.trim()}`);
  }
  return libs;
}

function isElf(file: string): boolean {
  const fd = fs.openSync(file, "r");
  try {
    const b = Buffer.alloc(4);
    return fs.readSync(fd, b, 0, 4, 0) === 4 && b.readUInt32BE(0) === 0x7f454c46;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Copy the host path `p` into `root` at the same path: every symbolic link on the way is
 * made again as a link (and its target copied), directories are copied whole (their own
 * links kept as they are), files with their mode.
 */
export function copyHostPath(root: string, p: string, depth = 0): void {
  if (depth > 40) throw new Error(`too many symbolic links copying ${p}`);
  const parts = path.resolve(p).split("/").filter(Boolean);
  let host = "/";
  for (let i = 0; i < parts.length; i++) {
    host = path.join(host, parts[i]!);
    const inRoot = path.join(root, host);
    const st = fs.lstatSync(host);
    if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(host);
      if (!fs.existsSync(inRoot) && !isLink(inRoot)) {
        fs.mkdirSync(path.dirname(inRoot), { recursive: true });
        fs.symlinkSync(target, inRoot);
      }
      const resolved = path.resolve(path.dirname(host), target);
      copyHostPath(root, path.join(resolved, ...parts.slice(i + 1)), depth + 1);
      return;
    }
    if (i < parts.length - 1) {
      fs.mkdirSync(inRoot, { recursive: true });
      continue;
    }
    if (st.isDirectory()) fs.cpSync(host, inRoot, { recursive: true, verbatimSymlinks: true });
    else if (!fs.existsSync(inRoot)) {
      fs.copyFileSync(host, inRoot);
      fs.chmodSync(inRoot, st.mode & 0o7777);
    }
  }
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * A new temp dir (removed by cleanupTempDirs) holding each of `binaries` at its host path,
 * their ldd closure, each of `extra` (files or whole directories, e.g. /usr/lib/python3.11,
 * or a library a program dlopens; an ELF among them brings its closure too), an
 * /etc/passwd and /etc/group with root and nobody, and empty /tmp, /proc and /dev. A binary
 * under /tmp lands in the rootfs's /tmp, which a sandbox's own tmpfs /tmp hides: copy such a
 * one (a test's compiled program) to another directory of the rootfs to run it there.
 */
export function buildDynamicRootfs(binaries: string[], extra: string[] = []): string {
  const root = tempDir("moat-dynrootfs-");
  const want = new Set<string>();
  for (const b of binaries) {
    want.add(b);
    for (const l of lddClosure(b)) want.add(l);
  }
  for (const e of extra) {
    want.add(e);
    if (fs.statSync(e).isFile() && isElf(e)) for (const l of lddClosure(e)) want.add(l);
  }
  for (const p of want) copyHostPath(root, p);
  fs.mkdirSync(path.join(root, "etc"), { recursive: true });
  fs.writeFileSync(
    path.join(root, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
  );
  fs.writeFileSync(path.join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
  for (const d of ["tmp", "proc", "dev", "root"]) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.chmodSync(path.join(root, "tmp"), 0o1777);
  return root;
}
