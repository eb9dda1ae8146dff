// moat's built-in default image, made on this machine from Debian's busybox-static, so the
// first sandbox needs no network. Deterministic: its digest depends only on the busybox binary.
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import { promisify } from "node:util";
import { MoatError } from "../spec/errors.js";
import { buildImage, type LayerEntry, packLayer } from "./build.js";
import type { ImageStore } from "./store.js";

export const DEFAULT_IMAGE = "moat.local/busybox:latest";
/** What people may type for it. */
export const DEFAULT_IMAGE_ALIASES = ["default", "moat.local/busybox", DEFAULT_IMAGE];
export const BUSYBOX_PATH = "/bin/busybox";

const execFileAsync = promisify(execFile);

/** The layer as a tar: busybox, one symlink per applet, and a minimal /etc. */
export async function busyboxLayer(busybox = BUSYBOX_PATH): Promise<Buffer> {
  let binary: Buffer;
  try {
    binary = await fs.readFile(busybox);
  } catch {
    throw new MoatError(
      "ENOENT",
      `${busybox} is missing: the default image is built from Debian's busybox-static; run "apt-get install busybox-static"`,
    );
  }
  const { stdout } = await execFileAsync(busybox, ["--list-full"]);
  const applets = stdout
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => /^[a-z0-9/_.[-]+$/.test(s) && s !== "bin/busybox");
  const dirs = [
    "bin",
    "dev",
    "etc",
    "home",
    "proc",
    "root",
    "sbin",
    "sys",
    "tmp",
    "usr",
    "usr/bin",
    "usr/sbin",
    "var",
  ];
  const entries: LayerEntry[] = dirs.map((d) => ({
    name: d,
    type: "directory",
    mode: d === "tmp" ? 0o1777 : d === "root" ? 0o700 : 0o755,
  }));
  entries.push({ name: "bin/busybox", type: "file", mode: 0o755, content: binary });
  for (const a of applets) {
    const depth = a.split("/").length - 1;
    entries.push({ name: a, type: "symlink", mode: 0o777, linkname: `${"../".repeat(depth)}bin/busybox` });
  }
  const text = (s: string) => Buffer.from(s);
  entries.push(
    {
      name: "etc/passwd",
      type: "file",
      mode: 0o644,
      content: text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
    },
    { name: "etc/group", type: "file", mode: 0o644, content: text("root:x:0:\nnogroup:x:65534:\n") },
    { name: "etc/hostname", type: "file", mode: 0o644, content: text("moat\n") },
  );
  return packLayer(entries);
}

/** Build the default image into the store unless it is there already. Returns its name. */
export async function ensureDefaultImage(store: ImageStore): Promise<string> {
  if (await store.resolve(DEFAULT_IMAGE)) return DEFAULT_IMAGE;
  await buildImage(store, {
    layers: [await busyboxLayer()],
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Cmd: ["sh"],
      WorkingDir: "/",
      Labels: {
        "org.opencontainers.image.description": "moat's built-in busybox image (from Debian busybox-static)",
      },
    },
    history: [{ created_by: "moat: built-in image from Debian busybox-static" }],
    name: DEFAULT_IMAGE,
  });
  return DEFAULT_IMAGE;
}
