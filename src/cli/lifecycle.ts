// moat's docker-like container lifecycle: run -d, exec, kill, ps, logs, rm, stop, start,
// restart, wait, inspect, stats, top, port, pause, unpause, cp, one module each under lifecycle/.
// Each module exports its usage text (and flags) for the help texts. Each container is an OCI container of src/oci (one detached monitor owning
// its sandbox), under moat's root; these commands only add names, images, a log file and
// docker's habits on top.
export { CP_USAGE, cmdCp } from "./lifecycle/cp.js";
export { cmdExec } from "./lifecycle/exec.js";
export { cmdInspect, INSPECT_USAGE } from "./lifecycle/inspect.js";
export { cmdKill } from "./lifecycle/kill.js";
export { cmdLogs, LOGS_FLAGS, LOGS_USAGE } from "./lifecycle/logs.js";
export { cmdPause, cmdUnpause, PAUSE_USAGE, UNPAUSE_USAGE } from "./lifecycle/pause.js";
export { cmdPort, PORT_USAGE } from "./lifecycle/port.js";
export { cmdPs, PS_FLAGS, PS_USAGE } from "./lifecycle/ps.js";
export { cmdRm } from "./lifecycle/rm.js";
export { type DetachedRun, runDetached } from "./lifecycle/run-detached.js";
export { cmdStart, START_FLAGS, START_USAGE } from "./lifecycle/start.js";
export { cmdStats, STATS_FLAGS, STATS_USAGE } from "./lifecycle/stats.js";
export {
  cmdRestart,
  cmdStop,
  cmdWait,
  RESTART_USAGE,
  STOP_FLAGS,
  STOP_USAGE,
  WAIT_USAGE,
} from "./lifecycle/stop.js";
export { cmdTop, TOP_USAGE } from "./lifecycle/top.js";
