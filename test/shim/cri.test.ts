// moat's shim under containerd 1.6's CRI, driven as the kubelet drives it: gRPC calls on
// containerd's socket (runtime.v1.RuntimeService) with the runtime handler "moat", one pod
// per isolation (chosen by the pod annotation run.moat.isolation), two containers in it,
// ExecSync, ContainerStatus, ContainerStats, the container logs the kubelet reads, then
// StopPodSandbox and RemovePodSandbox, after which nothing of the pod is left. Both
// containers must live in the pod's one sandbox: one shim process, and for the vm one QEMU.
// Host networking (no CNI plugin here). Needs Debian's containerd; runs as root.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { type Containerd, processesWith, SHIM_MAIN, startContainerd } from "../helpers/containerd.js";
import {
  type ContainerConfig,
  type ContainerState,
  CriClient,
  CriError,
  criConfig,
  HANDLER,
  importPauseImage,
  PAUSE_IMAGE,
  type PodSandboxConfig,
} from "../helpers/cri.js";
import { cleanupTempDirs, tempDir } from "../helpers/tmp.js";
import { waitFor } from "../oci/helpers.js";
import { qemuProcessesMentioning } from "../vm/helpers.js";

const IMAGE = "moat.local/busybox:latest";
let cd: Containerd;
let cri: CriClient;

before(async () => {
  // An empty CNI configuration of our own: the host's must not matter (the pods use the
  // node's network, as hostNetwork pods do).
  const cni = tempDir("cni-");
  fs.mkdirSync(path.join(cni, "bin"));
  fs.mkdirSync(path.join(cni, "net.d"));
  cd = await startContainerd({ config: criConfig({ cniDir: cni }), namespaces: ["k8s.io"] });
  await importPauseImage(cd);
  cri = new CriClient(cd.address);
});

after(async () => {
  cri?.close();
  await cd?.stop();
  cleanupTempDirs();
});

/** The moat shim servers running under this containerd: pid and the pod (-id) each serves. */
function shimServers(): Array<{ pid: number; pod: string }> {
  const found: Array<{ pid: number; pod: string }> = [];
  for (const pid of processesWith(cd.shimRoot)) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (argv[1] !== SHIM_MAIN || !argv.includes("serve")) continue;
      found.push({ pid, pod: argv[argv.indexOf("-id") + 1] ?? "" });
    } catch {
      // gone
    }
  }
  return found;
}

async function containerState(id: string): Promise<ContainerState> {
  return (await cri.call("ContainerStatus", { containerId: id })).status.state;
}

/** Poll ContainerStatus until the container is in `state` (the CRI learns exits from events). */
async function waitForState(id: string, state: ContainerState, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: ContainerState | undefined;
  while (Date.now() < deadline) {
    last = await containerState(id);
    if (last === state) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`container ${id} is ${last}, not ${state}, after ${timeoutMs} ms`);
}

/** The CRI's container log (what `kubectl logs` reads): "<time> <stream> <F|P> <text>" lines. */
function logLines(file: string): Array<{ stream: string; text: string }> {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [, stream = "", , ...rest] = l.split(" ");
      return { stream, text: rest.join(" ") };
    });
}

const byStream = (x: { stream: string }, y: { stream: string }) => x.stream.localeCompare(y.stream);

/** One pod of `isolation`, shared by its tests; `slowMs`: how long a container may take to run and end. */
function podSuite(isolation: "userkernel" | "vm", slowMs: number): void {
  describe(`CRI pod with runtime handler ${HANDLER}, ${isolation}`, () => {
    const logDirectory = tempDir("pod-logs-");
    const podConfig: PodSandboxConfig = {
      metadata: { name: `pod-${isolation}`, uid: `uid-${isolation}-1`, namespace: "default", attempt: 0 },
      logDirectory,
      labels: { app: "moat-cri-test" },
      annotations: { "run.moat.isolation": isolation },
      linux: {
        securityContext: { namespaceOptions: { network: "NODE", pid: "CONTAINER", ipc: "POD" } },
      },
    };
    const container = (name: string, command: string[]): ContainerConfig => ({
      metadata: { name, attempt: 0 },
      image: { image: IMAGE },
      command,
      envs: [{ key: "GREETING", value: `hello-${name}` }],
      logPath: `${name}/0.log`,
      linux: { securityContext: { namespaceOptions: { pid: "CONTAINER", ipc: "POD" } } },
    });
    let podId = "";
    let shimPid = 0;
    let appId = "";
    let oneShotId = "";
    const hostKernel = fs.readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();

    test("RunPodSandbox starts one shim for the pod, which runs the sandbox container", async () => {
      const before = shimServers().length;
      podId = (await cri.call("RunPodSandbox", { config: podConfig, runtimeHandler: HANDLER })).podSandboxId;
      assert.match(podId, /^[0-9a-f]{64}$/);
      const st = await cri.call("PodSandboxStatus", { podSandboxId: podId });
      assert.equal(st.status.state, "SANDBOX_READY");
      assert.equal(st.status.runtimeHandler, HANDLER);
      assert.equal(st.status.annotations["run.moat.isolation"], isolation);
      const mine = shimServers().filter((s) => s.pod === podId);
      assert.equal(mine.length, 1, "one moat shim serves the pod");
      assert.equal(shimServers().length, before + 1);
      shimPid = mine[0]!.pid;
      assert.equal(qemuProcessesMentioning(cd.shimRoot).length, isolation === "vm" ? 1 : 0);
    });

    test("CreateContainer x2 and StartContainer: both run in the pod's one sandbox", async () => {
      for (const img of [IMAGE, PAUSE_IMAGE]) {
        const s = await cri.call("ImageStatus", { image: { image: img } });
        assert.ok(s.image, `the CRI sees ${img}`);
      }
      // "app" keeps running; "oneshot" prints to both streams and ends with 7. "app" ends on
      // SIGTERM through a trap, as a well-behaved pod does (PID 1 without a handler would
      // ignore it, in both isolations, as on Linux).
      const appCmd =
        'echo "app says $GREETING"; echo app-err >&2; trap "echo app-term; exit 42" TERM; while :; do sleep 1; done';
      appId = (
        await cri.call("CreateContainer", {
          podSandboxId: podId,
          config: container("app", ["sh", "-c", appCmd]),
          sandboxConfig: podConfig,
        })
      ).containerId;
      const oneShotCmd =
        isolation === "vm"
          ? "echo oneshot-out; echo oneshot-err >&2; cat /proc/sys/kernel/random/boot_id; exit 7"
          : "echo oneshot-out; echo oneshot-err >&2; exit 7";
      oneShotId = (
        await cri.call("CreateContainer", {
          podSandboxId: podId,
          config: container("oneshot", ["sh", "-c", oneShotCmd]),
          sandboxConfig: podConfig,
        })
      ).containerId;
      assert.equal(await containerState(appId), "CONTAINER_CREATED");
      assert.equal(await containerState(oneShotId), "CONTAINER_CREATED");
      const listed = await cri.call("ListContainers", { filter: { podSandboxId: podId } });
      assert.deepEqual(listed.containers.map((c) => c.metadata.name).sort(), ["app", "oneshot"]);

      await cri.call("StartContainer", { containerId: appId });
      await cri.call("StartContainer", { containerId: oneShotId });
      assert.equal(await containerState(appId), "CONTAINER_RUNNING");

      // One sandbox: the same shim process as the pod's sandbox container, and for the vm
      // the same (single) QEMU.
      assert.deepEqual(
        shimServers().filter((s) => s.pod === podId),
        [{ pid: shimPid, pod: podId }],
      );
      if (isolation === "vm")
        assert.equal(qemuProcessesMentioning(cd.shimRoot).length, 1, "one VM for the pod");

      // The one-shot container's exit reaches the CRI with its code; its output is in its log.
      await waitForState(oneShotId, "CONTAINER_EXITED", slowMs);
      const done = (await cri.call("ContainerStatus", { containerId: oneShotId })).status;
      assert.equal(done.exitCode, 7);
      // (Not finishedAt >= startedAt: the CRI stamps startedAt when StartContainer's task.Start
      // returns, and a container this short can end before that.)
      assert.ok(done.startedAt >= done.createdAt && done.finishedAt >= done.createdAt, JSON.stringify(done));
      assert.equal(done.logPath, path.join(logDirectory, "oneshot/0.log"));
      const lines = logLines(done.logPath);
      const BOOT_ID = /^[0-9a-f]{8}-[0-9a-f-]{27}$/;
      assert.deepEqual(
        lines.filter((l) => !BOOT_ID.test(l.text)).sort(byStream),
        [
          { stream: "stderr", text: "oneshot-err" },
          { stream: "stdout", text: "oneshot-out" },
        ],
        "the oneshot's log, each line on its stream",
      );
      await waitFor(
        () =>
          fs.existsSync(path.join(logDirectory, "app/0.log")) &&
          logLines(path.join(logDirectory, "app/0.log")).length >= 2,
        30_000,
        "app's log",
      );
      assert.deepEqual(logLines(path.join(logDirectory, "app/0.log")).sort(byStream), [
        { stream: "stderr", text: "app-err" },
        { stream: "stdout", text: "app says hello-app" },
      ]);

      if (isolation === "vm") {
        // Both containers saw the same kernel: the pod's VM, not the host.
        const bootId = lines.find((l) => BOOT_ID.test(l.text))?.text;
        assert.ok(bootId, JSON.stringify(lines));
        const e = await cri.call("ExecSync", {
          containerId: appId,
          cmd: ["cat", "/proc/sys/kernel/random/boot_id"],
        });
        assert.equal(e.stdout.toString().trim(), bootId);
        assert.notEqual(bootId, fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim());
      }
      // Still the pod's one shim: the oneshot's exit and delete did not take it down.
      assert.deepEqual(
        shimServers().filter((s) => s.pod === podId),
        [{ pid: shimPid, pod: podId }],
      );
    });

    test("ExecSync: stdout, stderr and the exit code", async () => {
      const r = await cri.call("ExecSync", {
        containerId: appId,
        cmd: ["sh", "-c", 'echo "out $GREETING"; echo err >&2; exit 3'],
        timeout: 60,
      });
      assert.equal(r.stdout.toString(), "out hello-app\n");
      assert.equal(r.stderr.toString(), "err\n");
      assert.equal(r.exitCode, 3);
      const ok = await cri.call("ExecSync", { containerId: appId, cmd: ["uname", "-r"] });
      assert.equal(ok.exitCode, 0, ok.stderr.toString());
      if (isolation === "vm") {
        assert.match(ok.stdout.toString(), /^\d+\.\d+/);
        assert.notEqual(ok.stdout.toString().trim(), hostKernel, "the exec sees the guest kernel");
      }
      // A program that does not exist: the exec ends with a shell's 127, naming it on stderr
      // (the vm's agent and the userkernel report the failed execve that way).
      const missing = await cri.call("ExecSync", { containerId: appId, cmd: ["/no/such/program"] }).then(
        (r) => `exit ${r.exitCode}: ${r.stderr.toString()}`,
        (e: CriError) => e.details,
      );
      assert.match(missing, /\/no\/such\/program/);
      assert.match(missing, /^exit 127: /);
      // An exec into a container that has ended is refused.
      await assert.rejects(cri.call("ExecSync", { containerId: oneShotId, cmd: ["true"] }), CriError);
    });

    test("ContainerStats: CPU and memory of a running container", async () => {
      const s = await cri.call("ContainerStats", { containerId: appId });
      assert.equal(s.stats.attributes.id, appId);
      assert.ok(s.stats.cpu && s.stats.cpu.timestamp > 0, JSON.stringify(s.stats));
      assert.ok(s.stats.memory && (s.stats.memory.workingSetBytes?.value ?? 0) > 0, JSON.stringify(s.stats));
    });

    test("StopContainer ends the container with its stop signal; RemoveContainer; StopPodSandbox; RemovePodSandbox leaves nothing", async () => {
      const t0 = Date.now();
      await cri.call("StopContainer", { containerId: appId, timeout: 3 });
      const took = Date.now() - t0;
      const app = (await cri.call("ContainerStatus", { containerId: appId })).status;
      assert.equal(app.state, "CONTAINER_EXITED");
      // The stop signal (SIGTERM) ended it before the grace period was up: the container's trap ran.
      assert.ok(took < 3000, `StopContainer took ${took} ms: the CRI had to escalate to SIGKILL`);
      assert.equal(app.exitCode, 42);
      assert.ok(logLines(app.logPath).some((l) => l.stream === "stdout" && l.text === "app-term"));
      // The kubelet removes exited containers on its own; the pod and its shim stay.
      await cri.call("RemoveContainer", { containerId: oneShotId });
      await assert.rejects(cri.call("ContainerStatus", { containerId: oneShotId }), CriError);
      const listed = await cri.call("ListContainers", { filter: { podSandboxId: podId } });
      assert.deepEqual(
        listed.containers.map((c) => c.id),
        [appId],
      );
      assert.deepEqual(
        shimServers().filter((s) => s.pod === podId),
        [{ pid: shimPid, pod: podId }],
      );

      await cri.call("StopPodSandbox", { podSandboxId: podId });
      const st = await cri.call("PodSandboxStatus", { podSandboxId: podId });
      assert.equal(st.status.state, "SANDBOX_NOTREADY");
      // Stop is idempotent, as the kubelet expects.
      await cri.call("StopPodSandbox", { podSandboxId: podId });

      await cri.call("RemovePodSandbox", { podSandboxId: podId });
      const left = await cri.call("ListPodSandbox", { filter: { id: podId } });
      assert.deepEqual(left.items, []);
      await assert.rejects(cri.call("ContainerStatus", { containerId: appId }), CriError);
      await waitFor(() => shimServers().every((s) => s.pod !== podId), 30_000, "the pod's shim to exit");
      await waitFor(() => processesWith(cd.shimRoot).length === 0, 30_000, "every sandbox process to end");
      assert.deepEqual(qemuProcessesMentioning(cd.shimRoot), [], "a qemu is left");
      const dirs = fs.existsSync(cd.shimRoot) ? fs.readdirSync(cd.shimRoot) : [];
      assert.deepEqual(dirs, [], "a shim directory is left");
      const mounts = fs.readFileSync("/proc/self/mounts", "utf8");
      assert.ok(!mounts.includes(cd.dir), `a mount is left:\n${mounts}`);
      // Removing again is fine too.
      await cri.call("RemovePodSandbox", { podSandboxId: podId });
    });
  });
}

test("the CRI answers Version on containerd's socket", async () => {
  const v = await cri.call("Version", { version: "v1" });
  assert.equal(v.runtimeName, "containerd");
  assert.equal(v.runtimeApiVersion, "v1");
});

test("RunPodSandbox with an unknown isolation fails with a clear error and leaves nothing", async () => {
  const config: PodSandboxConfig = {
    metadata: { name: "pod-bogus", uid: "uid-bogus-1", namespace: "default" },
    logDirectory: tempDir("pod-logs-"),
    annotations: { "run.moat.isolation": "bogus" },
    linux: { securityContext: { namespaceOptions: { network: "NODE" } } },
  };
  await assert.rejects(cri.call("RunPodSandbox", { config, runtimeHandler: HANDLER }), (e: CriError) => {
    assert.match(e.details, /unknown isolation "bogus": choose vm, userkernel or auto/);
    return true;
  });
  const pods = await cri.call("ListPodSandbox", {});
  assert.deepEqual(pods.items, []);
  await waitFor(() => processesWith(cd.shimRoot).length === 0, 30_000, "the failed pod's shim to exit");
  const dirs = fs.existsSync(cd.shimRoot) ? fs.readdirSync(cd.shimRoot) : [];
  assert.deepEqual(dirs, [], "a shim directory is left");
});

podSuite("userkernel", 60_000);
podSuite("vm", 180_000);
