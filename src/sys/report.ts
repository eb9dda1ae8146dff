// A detached child's readiness report: the child gets a pipe as its fd 3, writes one line
// there once it is ready ("ok", or why it failed) and closes it. Reading to the pipe's end
// means a child that dies early is noticed at once, with no timeout to guess.
import type { ChildProcess } from "node:child_process";

export interface Report {
  /** The trimmed line the child wrote ("" if it died without one). */
  line: string;
  /** Resolves with the child's exit code once it exits (null if a signal ended it). */
  exited: Promise<number | null>;
}

/** Read the child's report, then let it run on without us (unref'd). */
export async function readReport(child: ChildProcess): Promise<Report> {
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const pipe = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
  let text = "";
  pipe.setEncoding("utf8");
  pipe.on("data", (d: string) => {
    text += d;
  });
  await new Promise<void>((resolve) => pipe.on("end", resolve).on("close", resolve));
  child.unref();
  pipe.destroy();
  return { line: text.trim(), exited };
}
