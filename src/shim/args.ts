// The shim's command line, as containerd writes it (Go's flag package syntax), and where a
// pod's shim keeps its socket and state.
import { createHash } from "node:crypto";
import * as path from "node:path";
import { MoatError } from "../spec/errors.js";

/** Where shims keep their sockets and sandbox state; MOAT_SHIM_ROOT moves it (tests). */
export function shimRoot(): string {
  return process.env.MOAT_SHIM_ROOT || "/run/moat-shim";
}

/** containerd groups a pod's containers under this annotation (the CRI sets it). */
export const SANDBOX_ID_ANNOTATION = "io.kubernetes.cri.sandbox-id";

export interface ShimArgs {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  socket: string;
  debug: boolean;
  version: boolean;
  action: string;
}

/** Go's flag syntax: -name value, -name=value, --name; booleans take no value. */
export function parseShimArgs(argv: string[]): ShimArgs {
  const a: ShimArgs = {
    namespace: "",
    address: "",
    publishBinary: "",
    id: "",
    bundle: "",
    socket: "",
    debug: false,
    version: false,
    action: "",
  };
  const strings: Record<string, keyof ShimArgs> = {
    namespace: "namespace",
    address: "address",
    "publish-binary": "publishBinary",
    id: "id",
    bundle: "bundle",
    socket: "socket",
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-") || arg === "-") {
      a.action = arg;
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    if (name === "debug" || name === "v") {
      const on = eq < 0 ? true : body.slice(eq + 1) !== "false";
      if (name === "debug") a.debug = on;
      else a.version = on;
      continue;
    }
    const key = strings[name];
    if (!key) throw new MoatError("EINVAL", `flag provided but not defined: -${name}`);
    const value = eq < 0 ? argv[++i] : body.slice(eq + 1);
    if (value === undefined) throw new MoatError("EINVAL", `flag needs an argument: -${name}`);
    (a as unknown as Record<string, string>)[key] = value;
  }
  return a;
}

/**
 * The pod's shim directory: one per (containerd, namespace, pod), named by a hash so that
 * its socket path stays short, and so that every container of a pod finds the same shim.
 */
export function shimDir(args: ShimArgs, groupId: string): string {
  const h = createHash("sha256").update(`${args.address}\0${args.namespace}\0${groupId}`).digest("hex");
  return path.join(shimRoot(), h.slice(0, 32));
}
