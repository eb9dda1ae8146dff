// Where the userkernel's time goes for one program: runs it in this process under the
// userkernel with V8's sampling profiler on (node:inspector, the profile `node --cpu-prof`
// writes) and prints the functions with the most self time, with "(idle)" (the main thread
// waiting: for a stub's stop, a thread-pool call, a timer), native code (the synchronous libc
// calls through koffi: ptrace, waitpid) and "(garbage collector)" shares.
// Issue 11 asks for the largest cost of each benchmark named from such a profile.
//
// Usage: node dist/bench/profile.js [--busybox | --rootfs DIR] [--top N] [--out FILE.cpuprofile]
//          -- PROGRAM ARGS...
// PROGRAM is a host path without a rootfs, a path in the rootfs with one; --busybox runs it in
// a copy of moat's built-in image (e.g. -- sh -c 'i=0; while [ $i -lt 200 ]; do true; i=$((i+1)); done').
// The .cpuprofile file opens in Chrome's DevTools (Performance) or speedscope.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import * as os from "node:os";
import * as path from "node:path";
import { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { createBundle } from "../src/image/bundle.js";
import { ensureDefaultImage } from "../src/image/default-image.js";
import { ImageStore } from "../src/image/store.js";
import { runStatic } from "../src/userkernel/kernel/run.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Self samples per function (name, file and line), largest first. */
export function selfTimes(nodes: ProfileNode[]): { name: string; share: number }[] {
  const by = new Map<string, number>();
  let total = 0;
  for (const n of nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    const f = n.callFrame;
    const where = f.url ? ` ${f.url.replace(/^file:\/\/.*?\/dist\//, "")}:${f.lineNumber + 1}` : "";
    // A frame with no script is V8's own ("(idle)", "(program)") or a native function: koffi's
    // calls into libc (ptrace, waitpid) show under one binding's name, whichever it was.
    const name = f.functionName || "(anonymous)";
    const key =
      f.url || name.startsWith("(") ? `${name}${where}` : `native code (koffi/libc; V8 labels it ${name})`;
    by.set(key, (by.get(key) ?? 0) + hits);
    total += hits;
  }
  return [...by]
    .map(([name, hits]) => ({ name, share: hits / Math.max(total, 1) }))
    .sort((a, b) => b.share - a.share);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      busybox: { type: "boolean" },
      rootfs: { type: "string" },
      top: { type: "string" },
      out: { type: "string" },
    },
  });
  if (positionals.length === 0)
    throw new Error("usage: profile.js [--busybox | --rootfs DIR] -- PROGRAM ARGS...");
  let rootfs = values.rootfs;
  let temp: string | undefined;
  if (values.busybox) {
    temp = await mkdtemp(path.join(os.tmpdir(), "moat-profile-"));
    const store = await ImageStore.open(path.join(temp, "store"));
    const b = await createBundle(store, await ensureDefaultImage(store), path.join(temp, "bundle"), {
      rootfsMode: "copy",
    });
    rootfs = b.rootfs;
  }
  const session = new Session();
  session.connect();
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 200 });
    const passOn = (to: NodeJS.WriteStream) =>
      new Writable({
        write: (c, _e, cb) => {
          to.write(c, cb);
        },
      });
    await session.post("Profiler.start");
    const t0 = process.hrtime.bigint();
    const r = await runStatic({
      ...(rootfs ? { rootfs } : {}),
      binary: positionals[0]!,
      argv: positionals,
      env: ["PATH=/usr/bin:/bin"],
      stdout: passOn(process.stdout),
      stderr: passOn(process.stderr),
      log: (l) => process.stderr.write(`${l}\n`),
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const { profile } = (await session.post("Profiler.stop")) as unknown as {
      profile: { nodes: ProfileNode[] };
    };
    if (values.out) await writeFile(values.out, JSON.stringify(profile));
    const top = Number(values.top ?? 20);
    process.stderr.write(
      `\n${positionals.join(" ")}: ${JSON.stringify({ code: r.code, signal: r.signal })} in ${ms.toFixed(0)} ms; self time:\n`,
    );
    for (const { name, share } of selfTimes(profile.nodes).slice(0, top))
      process.stderr.write(`${(share * 100).toFixed(1).padStart(5)}%  ${name}\n`);
  } finally {
    session.disconnect();
    if (temp) await rm(temp, { recursive: true, force: true });
  }
}

await main();
