// A detached container's two log files (stdout and stderr apart, so `moat logs` can give each
// back on its own stream): opened for appending by run -d, exec -d and start, read by logs.
import * as fs from "node:fs";
import * as path from "node:path";
import { errLogFile, logFile } from "../containers.js";

/** [stdout, stderr] descriptors appending to the container's logs; the caller closes them. */
export async function openLogs(root: string, id: string): Promise<[number, number]> {
  await fs.promises.mkdir(path.join(root, "logs"), { recursive: true, mode: 0o700 });
  const out = fs.openSync(logFile(root, id), "a", 0o600);
  try {
    return [out, fs.openSync(errLogFile(root, id), "a", 0o600)];
  } catch (e) {
    fs.closeSync(out);
    throw e;
  }
}

/** Bytes written so far to each log (0 for one not there yet): where a follower starts. */
export function logSizes(root: string, id: string): [number, number] {
  const size = (p: string) => {
    try {
      return fs.statSync(p).size;
    } catch {
      return 0;
    }
  };
  return [size(logFile(root, id)), size(errLogFile(root, id))];
}
