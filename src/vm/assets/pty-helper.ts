// The guest's pty helper (moat-pty.c next to this file), compiled on the host as a
// static binary when the guest image is built: the guest has no C library of its own,
// and Node in the guest cannot make a controlling terminal (see moat-pty.c for why).
import { execFile } from "node:child_process";
import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { MoatError } from "../../spec/errors.js";

const execFileP = promisify(execFile);

const SOURCE_NAME = "moat-pty.c";

/** The C source: beside the compiled module when installed, else in the source tree. */
async function findSource(): Promise<string> {
  const candidates = [
    fileURLToPath(new URL(SOURCE_NAME, import.meta.url)),
    // tsc leaves .c files where they are: dist/src/vm/assets/ -> src/vm/assets/
    fileURLToPath(new URL(`../../../../src/vm/assets/${SOURCE_NAME}`, import.meta.url)),
  ];
  for (const c of candidates) {
    if (
      await access(c).then(
        () => true,
        () => false,
      )
    )
      return c;
  }
  throw new MoatError(
    "ENOENT",
    `cannot find ${SOURCE_NAME} (looked in ${candidates.join(", ")}); reinstall moat`,
  );
}

/** Compile the helper into `scratch` and return the binary. */
export async function buildPtyHelper(scratch: string): Promise<Buffer> {
  const src = await findSource();
  const out = join(scratch, "moat-pty");
  try {
    await execFileP("gcc", ["-static", "-Os", "-s", "-Wall", "-o", out, src]);
  } catch (e) {
    throw new MoatError(
      "EIO",
      `cannot compile the guest pty helper ${src}: ${(e as Error).message.trim()}; install the gcc and libc6-dev packages`,
      { cause: e },
    );
  }
  return readFile(out);
}
