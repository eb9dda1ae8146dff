// A child process holding one idle moat sandbox, as `moat run -i IMAGE cat` would: the
// container runs `cat` waiting on a stdin that never gets data. Prints "ready" once the
// container runs; closing this process's stdin ends the container and destroys the
// sandbox. Run as: node idle-sandbox.js ISOLATION STORE_ROOT STATE_DIR ID
import * as path from "node:path";
import { PassThrough, Writable } from "node:stream";
import { createBundle, removeBundle } from "../../src/image/bundle.js";
import { ensureDefaultImage } from "../../src/image/default-image.js";
import { ImageStore } from "../../src/image/store.js";
import { parseIsolation, selectBackend } from "../../src/isolation/index.js";
import type { Sandbox } from "../../src/sandbox/sandbox.js";

const [isolation, root, stateDir, id] = process.argv.slice(2);
if (!isolation || !root || !stateDir || !id) {
  process.stderr.write("usage: idle-sandbox.js ISOLATION STORE_ROOT STATE_DIR ID\n");
  process.exit(2);
}

const store = await ImageStore.open(root);
const bundle = await createBundle(store, await ensureDefaultImage(store), path.join(stateDir, "bundle"), {
  args: ["cat"],
});
let sandbox: Sandbox | undefined;
const input = new PassThrough();
const sink = new Writable({ write: (_c, _e, cb) => cb() });
let code = 0;
try {
  sandbox = await (await selectBackend(parseIsolation(isolation))).createSandbox({
    id,
    stateDir: path.join(stateDir, "sandbox"),
  });
  await sandbox.create({
    id,
    bundle: bundle.dir,
    spec: bundle.spec,
    rootfs: bundle.rootfs,
    stdio: { stdin: input, stdout: sink, stderr: sink },
  });
  await sandbox.start(id);
  process.stdout.write("ready\n");
  await new Promise<void>((resolve) => {
    process.stdin.on("end", resolve);
    process.stdin.on("close", resolve);
    process.stdin.resume();
  });
  input.end();
  await Promise.race([sandbox.wait(id), new Promise((r) => setTimeout(r, 10_000))]);
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  code = 1;
} finally {
  await sandbox?.destroy();
  await removeBundle(bundle.dir);
}
process.exit(code);
