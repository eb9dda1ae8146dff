// The pure parts of moat's container commands: the OCI record -> inspect mapping (OOMKilled
// from the monitor's record: a real OOM kill comes from the vm backend, tested there), ps's
// fields and templates, the stop signal and timeout a container asks for.
import assert from "node:assert/strict";
import { test } from "node:test";
import { inspectView } from "../../src/cli/lifecycle/inspect-view.js";
import { parseFormat, psFields, render } from "../../src/cli/lifecycle/ps-format.js";
import { stopSignalOf, stopTimeoutOf } from "../../src/cli/lifecycle/stop-container.js";
import type { ContainerInfo } from "../../src/oci/api.js";

const oomed: ContainerInfo = {
  id: "0123456789abcdef0123456789abcdef",
  bundle: "/nonexistent",
  rootfs: "/nonexistent/rootfs",
  created: "2026-01-01T00:00:00.000Z",
  owner: "root",
  annotations: {
    "run.moat.name": "big",
    "run.moat.image": "default",
    "run.moat.memory": "128",
    "run.moat.cpus": "2",
  },
  status: "stopped",
  isolation: "vm",
  exitStatus: 137,
  exitedAt: "2026-01-01T00:01:00.000Z",
  oomKilled: true,
};

test("inspect: an OOM kill recorded by the monitor shows as State.OOMKilled with exit 137", () => {
  const v = inspectView({ info: oomed, spec: undefined, created: oomed.created }) as Record<string, any>;
  assert.equal(v.State.OOMKilled, true);
  assert.equal(v.State.ExitCode, 137);
  assert.equal(v.State.Status, "exited");
  assert.equal(v.State.FinishedAt, oomed.exitedAt);
  assert.equal(v.Name, "/big");
  assert.equal(v.HostConfig.Memory, 128 * 1024 * 1024);
  assert.equal(v.HostConfig.NanoCpus, 2e9);
  const { oomKilled: _o, ...plain } = oomed;
  assert.equal((inspectView({ info: plain, spec: undefined, created: "" }) as any).State.OOMKilled, false);
});

test("ps: OOMKilled in the status text and the fields; templates", () => {
  const row = { info: oomed, command: ["sh"] };
  assert.match(psFields(row).Status!, /^Exited \(137\) .* ago \(OOMKilled\)$/);
  assert.equal(psFields(row).OOMKilled, "true");
  assert.deepEqual(render(parseFormat("{{.Names}}:{{.OOMKilled}}"), [row]), ["big:true"]);
  assert.deepEqual(render(parseFormat("{{ .ID }}\\n"), [row]), ["0123456789ab\n"]);
});

test("the stop signal and timeout: moat's annotations, then the image's, then docker's defaults", () => {
  assert.equal(stopSignalOf({ annotations: {} }), "SIGTERM");
  assert.equal(
    stopSignalOf({ annotations: { "org.opencontainers.image.stopSignal": "SIGQUIT" } }),
    "SIGQUIT",
  );
  assert.equal(
    stopSignalOf({
      annotations: { "org.opencontainers.image.stopSignal": "SIGQUIT", "run.moat.stop-signal": "INT" },
    }),
    "SIGINT",
  );
  assert.equal(stopTimeoutOf({ annotations: {} }), 10);
  assert.equal(stopTimeoutOf({ annotations: { "run.moat.stop-timeout": "3" } }), 3);
});
