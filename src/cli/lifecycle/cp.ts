// `moat cp`: files between a running container and the host, both ways, as docker cp. The
// container's side is an exec of the image's `tar` (busybox's in the built-in image), so it
// works the same in both isolations and runs with the container's own rights; the host's side
// is tar-stream here. The archive comes from the container and is untrusted: every entry is
// checked to stay under the destination, no path is written through a symlink (one the
// archive made earlier included), set-id bits are dropped, and links point inside the copy.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import type { ImageStore } from "../../image/store.js";
import { containerState, execInContainer } from "../../oci/api.js";
import { MoatError } from "../../spec/errors.js";
import { CP } from "../command-specs.js";
import { resolveContainer, stateRoot } from "../containers.js";
import { parseCommand } from "../flags.js";
import type { Output } from "../output.js";

export const CP_USAGE = "usage: moat cp CONTAINER:PATH HOSTPATH | moat cp HOSTPATH CONTAINER:PATH";

/** "name:/path" -> its parts; a host path with a colon is written ./a:b, as docker takes it. */
function splitArg(text: string): { container?: string; path: string } {
  if (text.startsWith("/") || text.startsWith(".")) return { path: text };
  const colon = text.indexOf(":");
  if (colon <= 0) return { path: text };
  return { container: text.slice(0, colon), path: text.slice(colon + 1) };
}

/** Run a command in the container with the given files as its stdin/stdout; its status and stderr. */
async function execWith(
  sroot: string,
  id: string,
  args: string[],
  stdinPath: string | undefined,
  stdoutPath: string,
): Promise<{ status: number; stderr: string }> {
  const errPath = `${stdoutPath}.err`;
  const fds = [
    fs.openSync(stdinPath ?? "/dev/null", "r"),
    fs.openSync(stdoutPath, "w", 0o600),
    fs.openSync(errPath, "w", 0o600),
  ];
  try {
    const r = await execInContainer(sroot, id, { args, user: "0:0" }, { stdio: [fds[0]!, fds[1]!, fds[2]!] });
    return { status: r.status ?? 0, stderr: fs.readFileSync(errPath, "utf8").trim() };
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}

/** Reject names that leave the copy: absolute, "..", empty parts. Returns the clean parts. */
function safeParts(name: string): string[] {
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) {
    throw new MoatError(
      "EPERM",
      `the archive from the container names "${name}", outside the copy: nothing more was written`,
    );
  }
  return parts;
}

/** Every existing directory from `base` to the entry's parent is a real directory, not a symlink. */
function checkNoSymlink(base: string, parts: string[]): void {
  let p = base;
  for (const part of parts.slice(0, -1)) {
    p = path.join(p, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return; // not there yet: made below as a real directory
    }
    if (!st.isDirectory()) {
      throw new MoatError(
        "EPERM",
        `the archive from the container writes through ${p}, which is ${st.isSymbolicLink() ? "a symlink" : "not a directory"}: nothing more was written`,
      );
    }
  }
}

/** Extract a tar file under base, the first path component renamed to `top` when given. */
async function extractSafely(tarPath: string, base: string, top: string | undefined): Promise<number> {
  let count = 0;
  const ex = tar.extract();
  ex.on("entry", (h, stream, next) => {
    // A refused entry ends the extraction, which destroys this stream: that is no crash.
    stream.on("error", () => {});
    const done = (e?: unknown) => {
      if (e) {
        stream.resume();
        next(e as Error);
      } else next();
    };
    try {
      const parts = safeParts(h.name);
      if (parts.length === 0) {
        stream.resume();
        return stream.on("end", () => next());
      }
      if (top) parts[0] = top;
      checkNoSymlink(base, parts);
      const dest = path.join(base, ...parts);
      fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o755 });
      const mode = (h.mode ?? 0o644) & 0o777;
      // An existing non-directory at the spot is replaced, never written through.
      const existing = fs.lstatSync(dest, { throwIfNoEntry: false });
      if (existing && (h.type !== "directory" || !existing.isDirectory())) {
        if (existing.isDirectory()) fs.rmSync(dest, { recursive: true });
        else fs.unlinkSync(dest);
      }
      count++;
      switch (h.type) {
        case "directory":
          if (!existing?.isDirectory()) fs.mkdirSync(dest, { mode });
          stream.resume();
          return stream.on("end", () => done());
        case "file":
        case "contiguous-file": {
          const fd = fs.openSync(
            dest,
            fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
            mode,
          );
          const out = fs.createWriteStream("", { fd });
          return void pipeline(stream, out).then(() => {
            if (h.mtime) fs.utimesSync(dest, h.mtime, h.mtime);
            done();
          }, done);
        }
        case "symlink":
          // Made as it is; nothing is ever written through it (checkNoSymlink, O_NOFOLLOW).
          fs.symlinkSync(h.linkname ?? "", dest);
          stream.resume();
          return stream.on("end", () => done());
        case "link": {
          const target = safeParts(h.linkname ?? "");
          if (top && target.length) target[0] = top;
          checkNoSymlink(base, [...target, ""]);
          const from = path.join(base, ...target);
          if (!fs.lstatSync(from, { throwIfNoEntry: false })?.isFile()) {
            throw new MoatError(
              "EPERM",
              `the archive links ${h.name} to ${h.linkname}, which is no file of the copy`,
            );
          }
          fs.linkSync(from, dest);
          stream.resume();
          return stream.on("end", () => done());
        }
        default:
          // devices, fifos: not copied out of a container, as docker cp does not make them either
          count--;
          stream.resume();
          return stream.on("end", () => done());
      }
    } catch (e) {
      done(e);
    }
  });
  await pipeline(fs.createReadStream(tarPath), ex);
  return count;
}

/** Pack a host path into a tar file, its top entry named `top`; symlinks are kept as symlinks. */
async function packHost(src: string, top: string, tarPath: string): Promise<void> {
  const pack = tar.pack();
  const written = pipeline(pack, fs.createWriteStream(tarPath, { mode: 0o600 }));
  const add = async (p: string, name: string): Promise<void> => {
    const st = fs.lstatSync(p);
    const base = { name, mode: st.mode & 0o777, mtime: st.mtime, uid: 0, gid: 0 };
    if (st.isDirectory()) {
      pack.entry({ ...base, type: "directory" });
      for (const child of fs.readdirSync(p).sort()) await add(path.join(p, child), `${name}/${child}`);
    } else if (st.isSymbolicLink()) {
      pack.entry({ ...base, type: "symlink", linkname: fs.readlinkSync(p) });
    } else if (st.isFile()) {
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry({ ...base, type: "file", size: st.size }, (e) =>
          e ? reject(e) : resolve(),
        );
        fs.createReadStream(p).pipe(entry);
      });
    }
  };
  await add(src, top);
  pack.finalize();
  await written;
}

export async function cmdCp(store: ImageStore, argv: string[], out: Output): Promise<number> {
  const { positionals } = parseCommand(CP, argv);
  if (positionals.length !== 2) throw new MoatError("EINVAL", CP_USAGE);
  const src = splitArg(positionals[0]!);
  const dst = splitArg(positionals[1]!);
  if (Boolean(src.container) === Boolean(dst.container)) {
    throw new MoatError(
      "EINVAL",
      `moat cp copies between a container and the host: name the container on one side only. ${CP_USAGE}`,
    );
  }
  const ctr = (src.container ?? dst.container)!;
  const ctrPath = src.container ? src.path : dst.path;
  if (!ctrPath.startsWith("/")) {
    throw new MoatError(
      "EINVAL",
      `"${ctr}:${ctrPath}": give the path in the container from its root, e.g. ${ctr}:/etc/hostname`,
    );
  }
  const id = await resolveContainer(store.root, ctr);
  const sroot = stateRoot(store.root);
  const info = await containerState(sroot, id);
  if (info.status !== "running") {
    throw new MoatError(
      "ESTATE",
      `moat cp needs a running container: ${ctr} is ${info.status} (start it with moat start ${ctr})`,
    );
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "moat-cp-"));
  try {
    const tarPath = path.join(tmp, "copy.tar");
    const cpath = path.posix.normalize(ctrPath);
    const cdir = path.posix.dirname(cpath);
    const cbase = path.posix.basename(cpath);
    if (src.container) {
      // container -> host
      if (cpath === "/") throw new MoatError("EINVAL", "cp: copy a path under /, not the whole root");
      const r = await execWith(sroot, id, ["tar", "-cf", "-", "-C", cdir, cbase], undefined, tarPath);
      if (r.status !== 0) {
        throw new MoatError(
          r.status === 127 ? "ENOENT" : "EIO",
          `cp: tar in ${ctr} failed (status ${r.status})${r.stderr ? `: ${r.stderr}` : ""}`,
        );
      }
      const hostDst = path.resolve(dst.path);
      const st = fs.statSync(hostDst, { throwIfNoEntry: false });
      // An existing directory receives the copy under its own name; otherwise the copy takes the new name.
      const [base, top] = st?.isDirectory()
        ? [hostDst, undefined]
        : [path.dirname(hostDst), path.basename(hostDst)];
      if (!fs.statSync(base, { throwIfNoEntry: false })?.isDirectory()) {
        throw new MoatError("ENOENT", `cp: ${base} is not a directory on the host: make it first`);
      }
      const n = await extractSafely(tarPath, base, top);
      if (out.json) out.result({ id, from: cpath, to: path.join(base, top ?? cbase), entries: n }, "");
      return 0;
    }
    // host -> container
    const hostSrc = path.resolve(src.path);
    if (!fs.lstatSync(hostSrc, { throwIfNoEntry: false })) {
      throw new MoatError("ENOENT", `cp: ${src.path} does not exist on the host`);
    }
    const isDir =
      (await execWith(sroot, id, ["test", "-d", cpath], undefined, path.join(tmp, "probe"))).status === 0;
    const [into, top] = isDir ? [cpath, path.basename(hostSrc)] : [cdir, cbase];
    await packHost(hostSrc, top, tarPath);
    const r = await execWith(sroot, id, ["tar", "-xf", "-", "-C", into], tarPath, path.join(tmp, "out"));
    if (r.status !== 0) {
      throw new MoatError(
        "EIO",
        `cp: tar in ${ctr} could not write ${into}${r.stderr ? `: ${r.stderr}` : ""} (status ${r.status})`,
      );
    }
    if (out.json) out.result({ id, from: hostSrc, to: path.posix.join(into, top) }, "");
    return 0;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
