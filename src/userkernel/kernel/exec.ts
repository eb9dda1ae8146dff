// Finding and reading the program a sandbox starts, inside its rootfs: the name is searched
// in the PATH of the program's environment as execvp does, opened through the VFS (so the
// gofer's confinement applies) and read through the description, never from the host path.
import { readFile } from "node:fs/promises";
import { MoatError } from "../../spec/errors.js";
import { fail, KernelError } from "../errno.js";
import { parseElf } from "../loader/elf.js";
import type { Interpreter } from "../loader/load.js";
import type { Cred, Ctx, DirInode, RegularFile, Vfs } from "../vfs/index.js";

/** execvp's PATH when the environment has none. */
const DEFAULT_PATH = "/bin:/usr/bin";

/** Errors that make execvp try the next PATH entry. */
const TRY_NEXT = new Set(["ENOENT", "ENOTDIR", "ENODEV", "ETIMEDOUT", "ESTALE"]);

/**
 * A program that cannot be run, found before it ran: the Sandbox backend reports it as the
 * process's exit status (127 not found, 126 found but not runnable, as shells, runc and the
 * vm's moat-creds do) with `brief`, docker's wording, on the process's stderr.
 */
export class ExecError extends MoatError {
  constructor(
    code: "ENOENT" | "EACCES" | "ENOTSUP",
    readonly status: 126 | 127,
    /** docker's line for it, e.g. `exec: "nosuch": executable file not found in $PATH`. */
    readonly brief: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

export interface Executable {
  file: RegularFile;
  /** Where it was found, as the container names it (AT_EXECFN, /proc/self/exe). */
  path: string;
}

function pathOfEnv(env: readonly string[]): string {
  let found: string | undefined;
  for (const e of env) if (e.startsWith("PATH=")) found = e.slice(5);
  return found ?? DEFAULT_PATH;
}

function candidates(name: string, env: readonly string[]): string[] {
  if (name.includes("/")) return [name];
  return pathOfEnv(env)
    .split(":")
    .map((dir) => (dir === "" ? name : `${dir.replace(/\/+$/, "")}/${name}`));
}

/** Open `name` for execution in the container (execvp rules); MoatError if it cannot be run. */
export async function openExecutable(
  vfs: Vfs,
  ctx: Ctx,
  name: string,
  env: readonly string[],
): Promise<Executable> {
  let denied: KernelError | undefined;
  let last: KernelError | undefined;
  if (name !== "") {
    for (const path of candidates(name, env)) {
      try {
        return { file: await vfs.openExec(ctx, null, path), path };
      } catch (e) {
        if (!(e instanceof KernelError)) throw e;
        last = e;
        if (e.code === "EACCES") denied = e;
        else if (!TRY_NEXT.has(e.code)) break;
      }
    }
  }
  const err = denied ?? last;
  const quoted = JSON.stringify(name);
  if (err?.code === "EACCES") {
    const dir = err.message.includes("directory");
    throw new ExecError(
      "EACCES",
      126,
      `exec: ${quoted}: ${dir ? "is a directory" : "permission denied"}`,
      `${name} exists in the container's rootfs but is not an executable regular file the process may run: check its mode and the process user`,
      { cause: err },
    );
  }
  const where = name.includes("/") ? "" : ` (searched PATH=${pathOfEnv(env)})`;
  const brief = name.includes("/")
    ? `exec: ${quoted}: stat ${name}: no such file or directory`
    : `exec: ${quoted}: executable file not found in $PATH`;
  throw new ExecError(
    "ENOENT",
    127,
    brief,
    `${name || "(empty)"} was not found in the container's rootfs${where}${err && err.code !== "ENOENT" ? `: ${err.code}` : ""}: check the process args and the image`,
    err ? { cause: err } : undefined,
  );
}

/** The whole executable, read through its description. */
export async function readExecutable(exe: Executable): Promise<Buffer> {
  const size = exe.file.inode.size();
  const buf = Buffer.alloc(size);
  let off = 0;
  while (off < size) {
    const n = exe.file.pread(buf.subarray(off), off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

/** The parts of runStatic's options that say which program runs where. */
export interface ProgramOptions {
  binary: Buffer | string;
  argv: string[];
  env: string[];
  cwd?: string;
}

export interface Program {
  image: Buffer;
  /** The arguments it gets: the caller's, with the interpreter's in front for a #! script. */
  argv: string[];
  /** The name execve got (AT_EXECFN) and the file it resolved to (/proc/self/exe). */
  execfn: string;
  exe: string;
  /** The ELF interpreter (PT_INTERP) a dynamic program names, read from the same file system. */
  interp?: Interpreter;
  cwd?: DirInode;
}

/** Linux reads this much of a #! line, and follows this many interpreters of interpreters. */
const BINPRM_BUF_SIZE = 256;
const MAX_INTERP_DEPTH = 4;

/** "#!interpreter [one argument]" of a script; undefined for anything else. */
export function parseShebang(image: Buffer): { interp: string; arg?: string } | undefined {
  if (image[0] !== 0x23 || image[1] !== 0x21) return undefined;
  const nl = image.indexOf(0x0a);
  const end = Math.min(nl < 0 ? image.length : nl, BINPRM_BUF_SIZE);
  const line = image
    .subarray(2, end)
    .toString("latin1")
    .replace(/^[ \t]+|[ \t]+$/g, "");
  // As on Linux: everything after the interpreter is one argument, spaces included.
  const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(line);
  if (!m) fail("ENOEXEC", "empty #! line");
  return m[2] !== undefined ? { interp: m[1]!, arg: m[2] } : { interp: m[1]! };
}

/**
 * The ELF interpreter a program has failed to open: execve's errno (ENOENT for a missing one,
 * as on Linux, which makes shells say "not found" of a file that is there).
 */
export class InterpreterError extends KernelError {
  constructor(
    code: KernelError["code"],
    readonly interp: string,
  ) {
    super(code, `its ELF interpreter ${interp} cannot be opened (${code})`);
  }
}

/**
 * The interpreter of a dynamically linked ELF image, opened as execve opens it (execute
 * permission needed, the path resolved in the process's root and working directory), or
 * undefined for a static one. What else is wrong with the image is for the loader to say.
 */
async function readInterpreter(vfs: Vfs, ctx: Ctx, image: Buffer): Promise<Interpreter | undefined> {
  let path: string | undefined;
  try {
    path = parseElf(image).interp;
  } catch {
    return undefined;
  }
  if (path === undefined) return undefined;
  let file: RegularFile;
  try {
    file = await vfs.openExec(ctx, null, path);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    throw new InterpreterError(e.code, path);
  }
  try {
    return { image: await readExecutable({ file, path }), path: file.path ?? path };
  } finally {
    file.release();
  }
}

/**
 * Read an opened executable; for a #! script, open and read its interpreter instead (up to
 * four deep) with the script's path put into the arguments; for a dynamic ELF program, read
 * its ELF interpreter too. Releases every file it opened.
 */
export async function readProgram(
  vfs: Vfs,
  ctx: Ctx,
  first: Executable,
  argv: string[],
): Promise<{ image: Buffer; argv: string[]; exe: string; interp?: Interpreter }> {
  let cur = first;
  let args = argv;
  for (let depth = 0; ; depth++) {
    let image: Buffer;
    try {
      image = await readExecutable(cur);
    } finally {
      cur.file.release();
    }
    const script = parseShebang(image);
    if (!script) {
      const exe = cur.file.path ?? cur.path;
      const interp = await readInterpreter(vfs, ctx, image);
      return interp ? { image, argv: args, exe, interp } : { image, argv: args, exe };
    }
    if (depth >= MAX_INTERP_DEPTH) fail("ELOOP", "too many #! interpreters");
    args = [script.interp, ...(script.arg !== undefined ? [script.arg] : []), cur.path, ...args.slice(1)];
    cur = { file: await vfs.openExec(ctx, null, script.interp), path: script.interp };
  }
}

/** The program from the host (no rootfs): a path or the bytes themselves. */
export async function hostProgram(opts: ProgramOptions): Promise<Program> {
  if (typeof opts.binary !== "string") {
    const name = opts.argv[0] ?? "/proc/self/exe";
    return { image: opts.binary, argv: opts.argv, execfn: name, exe: name };
  }
  const image = await readFile(opts.binary);
  let interp: string | undefined;
  try {
    interp = parseElf(image).interp;
  } catch {
    // The loader says what is wrong with it.
  }
  // Without a rootfs there is no file system for ld.so to find the libraries in.
  if (interp !== undefined) {
    throw new ExecError(
      "ENOTSUP",
      126,
      `exec: ${JSON.stringify(opts.binary)}: dynamically linked (interpreter ${interp}): needs a rootfs`,
      `${opts.binary} is dynamically linked (interpreter ${interp}): run it with a rootfs that holds its interpreter and libraries, or use a static build (gcc -static)`,
    );
  }
  return { image, argv: opts.argv, execfn: opts.binary, exe: opts.binary };
}

/** The program and working directory from the container's rootfs, as its user sees them. */
export async function containerProgram(
  vfs: Vfs,
  opts: ProgramOptions,
  cred: Cred,
  pid = 1,
): Promise<Program> {
  if (typeof opts.binary !== "string") {
    throw new MoatError("EINVAL", "with a rootfs, binary must be a path in the container, not bytes");
  }
  const ctx = { cred, cwd: vfs.root, pid };
  const cwdPath = opts.cwd ?? "/";
  let cwd: DirInode;
  try {
    cwd = await vfs.lookupDir(ctx, null, cwdPath);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    throw new MoatError(
      e.code === "EACCES" ? "EACCES" : "ENOENT",
      `the working directory ${cwdPath} is not a directory the process can enter in the container's rootfs (${e.code}): fix process.cwd or the image`,
      { cause: e },
    );
  }
  ctx.cwd = cwd;
  const exe = await openExecutable(vfs, ctx, opts.binary, opts.env);
  try {
    const p = await readProgram(vfs, ctx, exe, opts.argv);
    return { ...p, execfn: exe.path, cwd };
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    const missing = e.code === "ENOENT";
    if (e instanceof InterpreterError) {
      throw new ExecError(
        missing ? "ENOENT" : e.code === "EACCES" ? "EACCES" : "ENOTSUP",
        missing ? 127 : 126,
        `exec: ${JSON.stringify(exe.path)}: ${missing ? "no such file or directory" : e.code === "EACCES" ? "permission denied" : e.code} (its ELF interpreter ${e.interp})`,
        `cannot run ${exe.path}: it is dynamically linked and its interpreter ${e.interp} cannot be opened in the container's rootfs (${e.code}): add it (and the libraries the program needs) to the image, or use a static build`,
        { cause: e },
      );
    }
    throw new ExecError(
      missing ? "ENOENT" : e.code === "EACCES" ? "EACCES" : "ENOTSUP",
      missing ? 127 : 126,
      `exec: ${JSON.stringify(exe.path)}: ${missing ? "no such file or directory (its #! interpreter)" : `its #! interpreter cannot be run: ${e.message}`}`,
      `cannot run the script ${exe.path}: its #! interpreter cannot be run (${e.message}); check the first line of the script and the image`,
      { cause: e },
    );
  }
}
