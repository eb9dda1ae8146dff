// The gofer: a separate process, the only opener of host files, confined to the rootfs.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  close,
  fstat,
  O_APPEND,
  O_CREAT,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_TMPFILE,
  O_TRUNC,
  O_WRONLY,
  pread,
  readAllDirents,
  readlinkat,
} from "../../src/sys/file.js";
import { GoferClient } from "../../src/userkernel/gofer/client.js";
import { buildRootfs, HOSTILE_PATHS, type Planted, removeRootfs } from "./vfs-rootfs.js";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function readAll(fd: number): Buffer {
  const chunks: Buffer[] = [];
  for (let off = 0; ; ) {
    const b = Buffer.alloc(65536);
    const n = pread(fd, b, off);
    if (n === 0) return Buffer.concat(chunks);
    chunks.push(b.subarray(0, n));
    off += n;
  }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

function processState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

/** Gone, or a zombie (dead, waiting for whoever inherited it to reap it). */
async function waitDead(pid: number, ms = 10000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const s = processState(pid);
    if (s === undefined || s === "Z" || s === "X") return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

describe("gofer", () => {
  let p: Planted;
  let g: GoferClient;
  before(async () => {
    p = buildRootfs();
    g = await GoferClient.start(p.root);
  });
  after(async () => {
    await g?.close();
    if (p) removeRootfs(p);
  });

  it("runs as a separate process and opens files inside the root", async () => {
    assert.notEqual(g.pid, process.pid);
    assert.ok(fs.readFileSync(`/proc/${g.pid}/cmdline`, "latin1").includes("gofer"));
    const r = await g.open("etc/hello", O_RDONLY);
    try {
      assert.equal(readAll(r.fd).toString(), "hello from the image\n");
      assert.equal(r.stat.mode & S_IFMT, S_IFREG);
      assert.equal(r.stat.size, 21);
      assert.equal(fstat(r.fd).ino, fs.statSync(`${p.root}/etc/hello`).ino);
    } finally {
      close(r.fd);
    }
    const d = await g.open("data", O_RDONLY | O_DIRECTORY);
    try {
      const names = readAllDirents(d.fd)
        .map((e) => e.name)
        .filter((n) => n !== "." && n !== "..")
        .sort();
      assert.deepEqual(names, ["a.txt", "b.txt", "empty", "sub"]);
    } finally {
      close(d.fd);
    }
  });

  it("hands out symlinks themselves on walks, for the kernel to resolve", async () => {
    const r = await g.open("evil/secret-abs", O_PATH | O_NOFOLLOW);
    try {
      assert.equal(r.stat.mode & S_IFMT, S_IFLNK);
      assert.equal(readlinkat(r.fd, ""), p.secretPath);
    } finally {
      close(r.fd);
    }
    // A walk never goes through a symlink: "bin" is one.
    assert.equal(await codeOf(g.open("bin/tool", O_PATH)), "ELOOP");
    assert.equal(await codeOf(g.open("evil/secret-abs", O_RDONLY)), "ELOOP");
    const followed = await g.open("bin/tool", O_RDONLY, true);
    try {
      assert.equal(readAll(followed.fd).toString(), "#!/bin/sh\necho tool\n");
    } finally {
      close(followed.fd);
    }
  });

  it("never returns anything outside the root, whatever the path or symlink", async () => {
    let opened = 0;
    for (const path of [...HOSTILE_PATHS, "evil/loop1", "evil/self", "evil/dotdot", "."])
      for (const follow of [false, true])
        for (const flags of [O_RDONLY, O_PATH, O_PATH | O_NOFOLLOW, O_RDONLY | O_DIRECTORY]) {
          let r: Awaited<ReturnType<GoferClient["open"]>>;
          try {
            r = await g.open(path, flags, follow);
          } catch (e) {
            assert.match((e as { code: string }).code, /^(ENOENT|ELOOP|ENOTDIR|EXDEV|ENXIO)$/, path);
            continue;
          }
          opened++;
          try {
            const st = fstat(r.fd);
            assert.ok(p.inside.has(`${st.dev}:${st.ino}`), `${path} (follow ${follow}) left the root`);
            if ((st.mode & S_IFMT) === S_IFREG && (flags & O_PATH) === 0)
              assert.ok(!readAll(r.fd).toString().includes(p.secret));
            if ((st.mode & S_IFMT) === S_IFDIR && (flags & O_PATH) === 0)
              assert.ok(!readAllDirents(r.fd).some((e) => e.name === "secret"), path);
          } finally {
            close(r.fd);
          }
        }
    // The clamped paths did resolve to things (the root's own files), not only to errors.
    assert.ok(opened > 10);
    const up = await g.open("evil/passwd-up", O_RDONLY, true);
    try {
      assert.equal(readAll(up.fd).toString(), "root:x:0:0:root:/root:/bin/sh\n");
    } finally {
      close(up.fd);
    }
  });

  it("refuses every write flag and never changes the rootfs", async () => {
    const before = fs.statSync(`${p.root}/etc/hello`, { bigint: true });
    for (const flags of [
      O_WRONLY,
      O_RDWR,
      O_RDONLY | O_CREAT,
      O_RDONLY | O_TRUNC,
      O_RDONLY | O_APPEND,
      O_TMPFILE,
    ])
      assert.equal(await codeOf(g.open("etc/hello", flags)), "EROFS", `flags ${flags.toString(8)}`);
    assert.equal(await codeOf(g.open("etc/new-file", O_WRONLY | O_CREAT)), "EROFS");
    assert.equal(fs.existsSync(`${p.root}/etc/new-file`), false);
    const after = fs.statSync(`${p.root}/etc/hello`, { bigint: true });
    assert.equal(after.mtimeNs, before.mtimeNs);
    assert.equal(after.size, before.size);
  });

  it("never opens device nodes or FIFOs of the image (only O_PATH)", async () => {
    assert.equal(await codeOf(g.open("evil/zero", O_RDONLY)), "ENXIO");
    // Opening a FIFO for reading would block the gofer until a writer came.
    assert.equal(await codeOf(g.open("evil/fifo", O_RDONLY)), "ENXIO");
    const r = await g.open("evil/zero", O_PATH);
    try {
      assert.equal(r.stat.mode & S_IFMT, 0o020000);
      assert.throws(() => pread(r.fd, Buffer.alloc(4), 0), /EBADF/);
    } finally {
      close(r.fd);
    }
  });

  it("answers pipelined requests in order", async () => {
    const paths = ["etc/hello", "data/a.txt", "etc/passwd", "data/b.txt", "nope", "data/sub/c.txt"];
    const all = await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) => g.open(paths[i % paths.length]!, O_RDONLY)),
    );
    all.forEach((r, i) => {
      const path = paths[i % paths.length]!;
      if (path === "nope") {
        assert.equal(r.status, "rejected");
        return;
      }
      assert.equal(r.status, "fulfilled", path);
      const { fd, stat } = (r as PromiseFulfilledResult<{ fd: number; stat: { size: number } }>).value;
      try {
        assert.equal(stat.size, fs.statSync(`${p.root}/${path}`).size);
        assert.equal(readAll(fd).toString(), fs.readFileSync(`${p.root}/${path}`, "utf8"));
      } finally {
        close(fd);
      }
    });
  });

  it("measures one open round trip", async (t) => {
    const times: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const t0 = process.hrtime.bigint();
      const r = await g.open("usr/bin/tool", O_PATH | O_NOFOLLOW);
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
      close(r.fd);
    }
    times.sort((a, b) => a - b);
    const median = times[times.length >> 1]!;
    t.diagnostic(`gofer open round trip: median ${median.toFixed(1)} us over ${times.length}`);
    assert.ok(median > 0);
  });

  it("exits when the kernel closes the socket", async () => {
    const own = await GoferClient.start(p.root);
    const pid = own.pid;
    assert.equal(processState(pid) !== undefined, true);
    await own.close();
    assert.ok(await waitDead(pid), "gofer still running after close()");
    assert.equal(await codeOf(own.open("etc/hello", O_RDONLY)), "EIO");
  });

  it("dies with the process that owns it (SIGKILL, no cleanup code runs)", async () => {
    const client = new URL("../../src/userkernel/gofer/client.js", import.meta.url).href;
    const script = `
      const { GoferClient } = await import(${JSON.stringify(client)});
      const g = await GoferClient.start(${JSON.stringify(p.root)});
      process.stdout.write(g.pid + "\\n");
      setInterval(() => {}, 1000);
    `;
    const kernel = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let goferPid = 0;
    try {
      const [line] = (await once(kernel.stdout!, "data")) as [Buffer];
      goferPid = Number(line.toString().trim());
      assert.ok(goferPid > 0);
      assert.equal(processState(goferPid) !== undefined && processState(goferPid) !== "Z", true);
      assert.ok(fs.readFileSync(`/proc/${goferPid}/cmdline`, "latin1").includes("gofer"));
      kernel.kill("SIGKILL");
      await once(kernel, "exit");
      assert.ok(await waitDead(goferPid), `gofer ${goferPid} outlived its kernel`);
    } finally {
      if (kernel.exitCode === null && kernel.signalCode === null) kernel.kill("SIGKILL");
      if (goferPid > 0 && processState(goferPid) !== undefined && processState(goferPid) !== "Z")
        process.kill(goferPid, "SIGKILL");
    }
  });

  it("fails clearly for a rootfs that does not exist", async () => {
    await assert.rejects(GoferClient.start(`${p.base}/no-such-rootfs`), (e: Error) => {
      assert.match(e.message, /rootfs/);
      return true;
    });
  });
});
