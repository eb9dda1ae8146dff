// moat's shim under a real containerd 1.6, driven by ctr as a person would: ctr run with
// --runtime io.containerd.moat.v2 in both isolations, exec, kill, delete, exit statuses, the
// events containerd saw, one VM for every container of a pod, and nothing left behind
// when a shim is killed. Needs Debian's containerd; runs as root.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { type Containerd, processesWith, RUNTIME, startContainerd } from "../helpers/containerd.js";
import { cleanupTempDirs } from "../helpers/tmp.js";
import { waitFor } from "../oci/helpers.js";
import { qemuProcessesMentioning } from "../vm/helpers.js";

const NS = "moat-test";
const IMAGE = "moat.local/busybox:latest";
let cd: Containerd;
let watcher: ChildProcess;
/** Every event containerd published, as `ctr events` prints them (time, namespace, topic, JSON). */
const events: string[] = [];

before(async () => {
  cd = await startContainerd({ namespaces: [NS] });
  watcher = spawn("ctr", ["--address", cd.address, "events"], { stdio: ["ignore", "pipe", "ignore"] });
  watcher.stdout!.setEncoding("utf8");
  let partial = "";
  watcher.stdout!.on("data", (d: string) => {
    const lines = (partial + d).split("\n");
    partial = lines.pop() ?? "";
    events.push(...lines);
  });
});

after(async () => {
  watcher?.kill();
  await cd.stop();
  cleanupTempDirs();
});

function ctr(args: string[], input?: string) {
  return cd.ctr(["-n", NS, ...args], input === undefined ? {} : { input });
}

function run(id: string, isolation: string, args: string[], extra: string[] = []) {
  return ctr([
    "run",
    "--runtime",
    RUNTIME,
    "--annotation",
    `run.moat.isolation=${isolation}`,
    ...extra,
    IMAGE,
    id,
    ...args,
  ]);
}

/** The task's status as `ctr task ls` shows it, or undefined when there is no task. */
function taskStatus(id: string): string | undefined {
  const r = ctr(["task", "ls"]);
  const line = r.stdout.split("\n").find((l) => l.split(/\s+/)[0] === id);
  return line?.trim().split(/\s+/)[2];
}

/**
 * Nothing of the pod's shim is left: no shim process, no shim directory, no mount. containerd
 * cleans up after a dead shim in the background, so this waits a little for it first.
 */
async function assertNothingLeft(): Promise<void> {
  const clean = () =>
    processesWith(cd.shimRoot).length === 0 &&
    (!fs.existsSync(cd.shimRoot) || fs.readdirSync(cd.shimRoot).length === 0);
  await waitFor(clean, 15_000, "the shim's cleanup").catch(() => {});
  assert.deepEqual(processesWith(cd.shimRoot), [], "a shim or sandbox process is left");
  assert.deepEqual(qemuProcessesMentioning(cd.shimRoot), [], "a qemu is left");
  const left = fs.existsSync(cd.shimRoot) ? fs.readdirSync(cd.shimRoot) : [];
  assert.deepEqual(left, [], "a shim directory is left");
  const mounts = fs.readFileSync("/proc/self/mounts", "utf8");
  assert.ok(!mounts.includes(`${cd.dir}/state`), "a rootfs mount is left");
}

describe("ctr with the moat shim, userkernel", () => {
  test("run --rm: stdout and stderr apart, the exit status passed through, events in order", async () => {
    const r = run("uk-once", "userkernel", ["sh", "-c", "echo out; echo err >&2; exit 3"], ["--rm"]);
    assert.equal(r.stdout, "out\n", r.stderr);
    assert.equal(r.stderr, "err\n");
    assert.equal(r.status, 3);
    // containerd got the shim's events for the task, in containerd's mandatory order.
    const wanted = ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"];
    const seen = () =>
      events
        .filter((l) => l.includes('"uk-once"'))
        .map((l) => l.split(" ")[5])
        .filter((t) => t?.startsWith("/tasks/"));
    await waitFor(() => seen().length >= 4, 10_000, "the task's four events");
    assert.deepEqual(seen(), wanted);
    await assertNothingLeft();
  });

  test("a detached task: exec, kill, status and delete", async () => {
    const d = run("uk-bg", "userkernel", ["sh", "-c", "echo started > /tmp/mark; exec sleep 600"], ["-d"]);
    assert.equal(d.status, 0, d.stderr);
    await waitFor(() => taskStatus("uk-bg") === "RUNNING", 30_000, "the task to run");
    const e = ctr(["task", "exec", "--exec-id", "e1", "uk-bg", "cat", "/tmp/mark"]);
    assert.equal(e.stdout, "started\n", e.stderr);
    assert.equal(e.status, 0);
    const bad = ctr(["task", "exec", "--exec-id", "e2", "uk-bg", "sh", "-c", "exit 7"]);
    assert.equal(bad.status, 7, bad.stderr);
    assert.equal(ctr(["task", "kill", "-s", "SIGKILL", "uk-bg"]).status, 0);
    await waitFor(() => taskStatus("uk-bg") === "STOPPED", 30_000, "the task to stop");
    // Killing a stopped task is refused as containerd expects: not found.
    assert.match(ctr(["task", "kill", "-s", "SIGKILL", "uk-bg"]).stderr, /not found|already finished/);
    assert.equal(ctr(["task", "delete", "uk-bg"]).status, 0);
    assert.equal(ctr(["container", "delete", "uk-bg"]).status, 0);
    await waitFor(() => processesWith(cd.shimRoot).length === 0, 10_000, "the shim to exit");
    await assertNothingLeft();
  });

  test("a SIGKILLed shim: containerd cleans up through `delete` and nothing is left", async () => {
    const d = run("uk-kill", "userkernel", ["sleep", "600"], ["-d"]);
    assert.equal(d.status, 0, d.stderr);
    await waitFor(() => taskStatus("uk-kill") === "RUNNING", 30_000, "the task to run");
    const shims = processesWith(cd.shimRoot).filter((p) =>
      fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes("serve"),
    );
    assert.equal(shims.length, 1, "one shim serves the task");
    process.kill(shims[0]!, "SIGKILL");
    await waitFor(() => taskStatus("uk-kill") !== "RUNNING", 30_000, "containerd to see the shim die");
    ctr(["task", "delete", "--force", "uk-kill"]);
    assert.equal(ctr(["container", "delete", "uk-kill"]).status, 0);
    await waitFor(() => processesWith(cd.shimRoot).length === 0, 10_000, "the sandbox's processes to die");
    await assertNothingLeft();
  });
});

describe("ctr with the moat shim, vm: one VM per pod", () => {
  const pod = ["--annotation", "io.kubernetes.cri.sandbox-id=vmpod"];

  test("two containers in one VM, the guest kernel, exec, kill, and a killed shim takes its VM along", async () => {
    const d = run("vm-a", "vm", ["sleep", "600"], ["-d", ...pod]);
    assert.equal(d.status, 0, d.stderr);
    await waitFor(() => taskStatus("vm-a") === "RUNNING", 120_000, "the VM's first task to run");
    assert.equal(qemuProcessesMentioning(cd.shimRoot).length, 1, "the pod has a VM");

    // A second container of the same pod runs in the same VM, with the guest's kernel.
    const host = fs.readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
    const b = run("vm-b", "vm", ["sh", "-c", "uname -r; echo err >&2; exit 3"], ["--rm", ...pod]);
    assert.equal(b.status, 3, b.stderr);
    assert.equal(b.stderr, "err\n");
    const guest = b.stdout.trim();
    assert.match(guest, /^\d+\.\d+/);
    assert.notEqual(guest, host, "the container sees the guest kernel, not the host's");
    assert.equal(qemuProcessesMentioning(cd.shimRoot).length, 1, "still one VM for the pod");

    const e = ctr(["task", "exec", "--exec-id", "e1", "vm-a", "sh", "-c", "cat /proc/version; exit 4"]);
    assert.equal(e.status, 4, e.stderr);
    assert.match(e.stdout, new RegExp(guest.replace(/\./g, "\\.")));

    // pause freezes the task's processes (the guest's cgroup freezer), resume thaws them.
    assert.equal(ctr(["task", "pause", "vm-a"]).status, 0);
    assert.equal(taskStatus("vm-a"), "PAUSED");
    assert.match(ctr(["task", "pause", "vm-a"]).stderr, /already paused/);
    assert.equal(ctr(["task", "resume", "vm-a"]).status, 0);
    assert.equal(taskStatus("vm-a"), "RUNNING");
    const after = ctr(["task", "exec", "--exec-id", "e2", "vm-a", "true"]);
    assert.equal(after.status, 0, after.stderr);
    const topicsOf = (id: string) => events.filter((l) => l.includes(`"${id}"`)).map((l) => l.split(" ")[5]);
    await waitFor(
      () => topicsOf("vm-a").includes("/tasks/paused") && topicsOf("vm-a").includes("/tasks/resumed"),
      10_000,
      `the paused and resumed events (seen: ${topicsOf("vm-a").join(" ")}; ${events.length} events in all)`,
    ).catch((e: Error) =>
      assert.fail(`${e.message}; seen: ${topicsOf("vm-a").join(" ")}, ${events.length} events`),
    );

    // An exec the guest's OOM killer ends: 137, and TaskOOM before its TaskExit, as
    // containerd's own shim sends them; the task and its VM live on.
    const oom = ctr([
      "task",
      "exec",
      "--exec-id",
      "oom",
      "vm-a",
      "sh",
      "-c",
      "head -c 1024m /dev/zero | tail",
    ]);
    assert.equal(oom.status, 137, oom.stderr);
    const vmA = () => events.filter((l) => l.includes('"vm-a"'));
    await waitFor(
      () => vmA().some((l) => l.split(" ")[5] === "/tasks/oom"),
      10_000,
      `the TaskOOM event (seen: ${topicsOf("vm-a").join(" ")})`,
    );
    const oomAt = vmA().findIndex((l) => l.split(" ")[5] === "/tasks/oom");
    const exitAt = vmA().findIndex((l) => l.split(" ")[5] === "/tasks/exit" && l.includes('"oom"'));
    assert.ok(oomAt >= 0 && exitAt > oomAt, `TaskOOM, then the exec's TaskExit: ${vmA().join("\n")}`);
    assert.equal(ctr(["task", "exec", "--exec-id", "e3", "vm-a", "true"]).status, 0);

    // kill: SIGTERM ends a sleep (PID 1 of its namespace has no default action... busybox sleep does).
    assert.equal(ctr(["task", "kill", "-s", "SIGKILL", "vm-a"]).status, 0);
    await waitFor(() => taskStatus("vm-a") === "STOPPED", 60_000, "the killed task to stop");
    assert.equal(ctr(["task", "delete", "vm-a"]).status, 0);
    assert.equal(ctr(["container", "delete", "vm-a"]).status, 0);
    await waitFor(() => qemuProcessesMentioning(cd.shimRoot).length === 0, 30_000, "the pod's VM to go");
    await assertNothingLeft();

    // A shim killed with its VM running takes the VM along; containerd's cleanup does the rest.
    const c = run("vm-c", "vm", ["sleep", "600"], ["-d", ...pod]);
    assert.equal(c.status, 0, c.stderr);
    await waitFor(() => taskStatus("vm-c") === "RUNNING", 120_000, "the new VM's task to run");
    const shim = processesWith(cd.shimRoot).find((p) =>
      fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes("serve"),
    );
    assert.ok(shim);
    process.kill(shim, "SIGKILL");
    await waitFor(
      () => qemuProcessesMentioning(cd.shimRoot).length === 0,
      30_000,
      "qemu to die with its shim",
    );
    await waitFor(() => taskStatus("vm-c") !== "RUNNING", 30_000, "containerd to see the shim die");
    ctr(["task", "delete", "--force", "vm-c"]);
    assert.equal(ctr(["container", "delete", "vm-c"]).status, 0);
    await waitFor(() => processesWith(cd.shimRoot).length === 0, 10_000, "every sandbox process to die");
    await assertNothingLeft();
  });
});
