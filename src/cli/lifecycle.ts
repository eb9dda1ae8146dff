// moat's docker-like container lifecycle: run -d, exec, kill, ps, logs, rm, one module each
// under lifecycle/. Each container is an OCI container of src/oci (one detached monitor owning
// its sandbox), under moat's root; these commands only add names, images, a log file and
// docker's habits on top.
export { cmdExec } from "./lifecycle/exec.js";
export { cmdKill } from "./lifecycle/kill.js";
export { cmdLogs } from "./lifecycle/logs.js";
export { cmdPs } from "./lifecycle/ps.js";
export { cmdRm } from "./lifecycle/rm.js";
export { type DetachedRun, runDetached } from "./lifecycle/run-detached.js";
