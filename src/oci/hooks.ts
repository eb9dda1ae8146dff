// OCI lifecycle hooks: host programs run with the container's state JSON on stdin.
// createContainer and startContainer are meant to run inside the container's namespaces;
// a moat container has its own kernel, so moat runs every hook on the host.
import { spawn } from "node:child_process";
import { MoatError } from "../spec/errors.js";
import type { Hook, Hooks } from "../spec/runtime.js";

export type HookName = keyof Hooks;

function runOne(name: HookName, hook: Hook, stateJson: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const [argv0, ...args] = hook.args?.length ? hook.args : [hook.path];
    const child = spawn(hook.path, args, {
      argv0: argv0 ?? hook.path,
      // As runc: a hook without env inherits the runtime's environment.
      ...(hook.env ? { env: Object.fromEntries(hook.env.map((e) => splitEnv(e))) } : {}),
      stdio: ["pipe", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    let timer: NodeJS.Timeout | undefined;
    if (hook.timeout && hook.timeout > 0) {
      timer = setTimeout(() => child.kill("SIGKILL"), hook.timeout * 1000);
    }
    child.stdin.on("error", () => {}); // a hook need not read its stdin
    child.stdin.end(stateJson);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(
        new MoatError(
          "EINVAL",
          `${name} hook ${hook.path} cannot run: ${e.message}: fix hooks.${name} in config.json`,
        ),
      );
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const how = signal
        ? `was killed by ${signal}${timer && signal === "SIGKILL" ? " (timeout)" : ""}`
        : `exited ${code}`;
      reject(
        new MoatError(
          "EINVAL",
          `${name} hook ${hook.path} ${how}${stderr ? `: ${stderr.trim()}` : ""}: fix the hook or remove it from config.json`,
        ),
      );
    });
  });
}

function splitEnv(e: string): [string, string] {
  const i = e.indexOf("=");
  return i < 0 ? [e, ""] : [e.slice(0, i), e.slice(i + 1)];
}

/** Run the hooks of one kind in order; the first failure stops them and is thrown. */
export async function runHooks(hooks: Hooks | undefined, name: HookName, state: unknown): Promise<void> {
  const json = JSON.stringify(state);
  for (const hook of hooks?.[name] ?? []) await runOne(name, hook, json);
}
