// What `moat inspect` shows of a container, in docker's shape where the two map: a pure
// function of its OCI record and its bundle's config.json, so the mapping is tested alone.
import type { ContainerInfo } from "../../oci/api.js";
import { SIZING_ANNOTATIONS } from "../../oci/api.js";
import { INIT_ANNOTATION, type Spec } from "../../spec/runtime.js";
import { IMAGE_ANNOTATION, NAME_ANNOTATION } from "../containers.js";

/** `--label K=V` is kept as the annotation run.moat.label.K = V. */
export const LABEL_PREFIX = "run.moat.label.";

/** docker's State.Status words for the OCI statuses. */
export function dockerStatus(status: ContainerInfo["status"]): string {
  switch (status) {
    case "creating":
      return "created";
    case "stopped":
      return "exited";
    default:
      return status;
  }
}

export function labelsOf(annotations: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations)) {
    if (k.startsWith(LABEL_PREFIX) && k.length > LABEL_PREFIX.length) out[k.slice(LABEL_PREFIX.length)] = v;
  }
  return out;
}

/** -p mappings from the sizing annotation: "8080:80,8443:443" -> [{host, guest}]. */
export function portsOf(annotations: Record<string, string>): { host: number; guest: number }[] {
  const text = annotations[SIZING_ANNOTATIONS.ports] ?? "";
  return text
    .split(",")
    .map((p) => /^\s*(\d+):(\d+)\s*$/.exec(p))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ host: Number(m[1]), guest: Number(m[2]) }));
}

const ZERO_TIME = "0001-01-01T00:00:00Z";

export interface InspectInput {
  info: ContainerInfo;
  spec: Spec | undefined;
  /** When the container was first made (its bundle's config.json): docker's Created. */
  created: string;
}

export function inspectView({ info, spec, created }: InspectInput): Record<string, unknown> {
  const a = info.annotations;
  const args = spec?.process?.args ?? [];
  const running = info.status === "running" || info.status === "paused";
  const memMiB = Number(a[SIZING_ANNOTATIONS.memory] ?? 0);
  const cpus = Number(a[SIZING_ANNOTATIONS.cpus] ?? 0);
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of portsOf(a)) {
    const key = `${p.guest}/tcp`;
    bindings[key] = [...(bindings[key] ?? []), { HostIp: "127.0.0.1", HostPort: String(p.host) }];
  }
  const user = spec?.process?.user;
  const mounts = (spec?.mounts ?? [])
    .filter((m) => m.type === "bind" || m.options?.includes("bind") || m.options?.includes("rbind"))
    .map((m) => ({
      Type: "bind",
      Source: m.source ?? "",
      Destination: m.destination,
      Mode: m.options?.includes("ro") ? "ro" : "",
      RW: !m.options?.includes("ro"),
      Propagation: "",
    }));
  return {
    Id: info.id,
    Created: created,
    Path: args[0] ?? "",
    Args: args.slice(1),
    State: {
      Status: dockerStatus(info.status),
      Running: info.status === "running",
      Paused: info.status === "paused",
      Restarting: false,
      OOMKilled: Boolean(info.oomKilled),
      Dead: false,
      Pid: running ? (info.containerPid ?? info.monitorPid ?? 0) : 0,
      ExitCode: info.status === "stopped" ? (info.exitStatus ?? 0) : 0,
      Error: "",
      StartedAt: info.created,
      FinishedAt: info.status === "stopped" ? (info.exitedAt ?? ZERO_TIME) : ZERO_TIME,
    },
    Image: a[IMAGE_ANNOTATION] ?? "",
    Name: `/${a[NAME_ANNOTATION] ?? ""}`,
    Config: {
      Hostname: spec?.hostname ?? "",
      User: user ? `${user.uid}:${user.gid}` : "",
      Tty: Boolean(spec?.process?.terminal),
      Env: spec?.process?.env ?? [],
      Cmd: args,
      Image: a[IMAGE_ANNOTATION] ?? "",
      WorkingDir: spec?.process?.cwd ?? "",
      Labels: labelsOf(a),
      ...(a["run.moat.stop-signal"] || a["org.opencontainers.image.stopSignal"]
        ? { StopSignal: a["run.moat.stop-signal"] || a["org.opencontainers.image.stopSignal"] }
        : {}),
      ...(a["run.moat.stop-timeout"] ? { StopTimeout: Number(a["run.moat.stop-timeout"]) } : {}),
    },
    HostConfig: {
      Isolation: info.isolation ?? "",
      Memory: memMiB * 1024 * 1024,
      NanoCpus: cpus * 1e9,
      NetworkMode: a[SIZING_ANNOTATIONS.network] ?? "nat",
      PortBindings: bindings,
      ReadonlyRootfs: Boolean(spec?.root?.readonly),
      PidsLimit: spec?.linux?.resources?.pids?.limit ?? 0,
      Init: a[INIT_ANNOTATION] === "true",
    },
    Mounts: mounts,
  };
}
