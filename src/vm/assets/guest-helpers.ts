// The guest's C helpers, compiled on the host as static binaries when the guest image is
// built (the guest has no C library of its own): moat-pty.c, because Node in the guest
// cannot make a controlling terminal; moat-creds.c, because it cannot run code between
// fork and exec to take on a container process's identity; moat-fresh.c, because it cannot
// issue the random device's ioctls (see each file for why).
import { execFile } from "node:child_process";
import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { MoatError } from "../../spec/errors.js";

const execFileP = promisify(execFile);

export type GuestHelper = "moat-pty" | "moat-creds" | "moat-fresh";

/** The C source: beside the compiled module when installed, else in the source tree. */
async function findSource(name: GuestHelper): Promise<string> {
  const SOURCE_NAME = `${name}.c`;
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
  throw new MoatError("ENOENT", `cannot find ${name}.c (looked in ${candidates.join(", ")}); reinstall moat`);
}

/** Compile one helper into `scratch` and return the binary. */
export async function buildGuestHelper(scratch: string, name: GuestHelper): Promise<Buffer> {
  const src = await findSource(name);
  const out = join(scratch, name);
  try {
    await execFileP("gcc", ["-static", "-Os", "-s", "-Wall", "-o", out, src]);
  } catch (e) {
    throw new MoatError(
      "EIO",
      `cannot compile the guest helper ${src}: ${(e as Error).message.trim()}; install the gcc and libc6-dev packages`,
      { cause: e },
    );
  }
  return readFile(out);
}
