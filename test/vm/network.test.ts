// The vm isolation's networks, on real QEMU guests: "nat" (passt behind moat's frame
// filter, with a port forwarded from the host's loopback) and "none" (no NIC). Nothing
// here sends traffic to any address but the host's loopback and the guest's own: this
// machine has no network, and the frame filter drops what a container sends to the
// gateway or the host's addresses before passt sees it.
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { removeBundle } from "../../src/image/bundle.js";
import type { Sandbox } from "../../src/sandbox/sandbox.js";
import { isMoatError } from "../../src/spec/errors.js";
import type { Spec } from "../../src/spec/runtime.js";
import { ensureAssets } from "../../src/vm/assets/build.js";
import { VmBackend } from "../../src/vm/sandbox.js";
import { defaultBundle, passtChildren, qemuProcessesMentioning, startIn } from "./helpers.js";

/** A port the kernel just handed out on loopback, released again. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Everything the server at 127.0.0.1:port sends before it closes, after we send a line;
 * "" if it sent nothing. We speak first: Debian bookworm's passt never ACKs the guest's
 * SYN-ACK of a forwarded connection, so the guest's side is established only by the
 * first data from the host (a server that speaks first waits forever).
 */
function readFrom(port: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = connect(port, "127.0.0.1", () => sock.write("hello-from-host\n"));
    sock.setTimeout(5_000, () => sock.destroy());
    sock.on("data", (d: Buffer) => chunks.push(d));
    sock.on("error", () => {});
    sock.on("close", () => resolve(Buffer.concat(chunks).toString()));
  });
}

/** Connect and say nothing: the first line the server sends, or "" if none in 5 s. */
function firstLineFrom(port: number): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const sock = connect(port, "127.0.0.1");
    sock.setTimeout(5_000, () => sock.destroy());
    sock.on("data", (d: Buffer) => {
      got += d.toString();
      if (got.includes("\n")) sock.destroy();
    });
    sock.on("error", () => {});
    sock.on("close", () => resolve(got));
  });
}

describe("vm sandbox networks", () => {
  let tmp: string;
  let bundleDir: string;
  let spec: Spec;
  let rootfs: string;
  let nat: Sandbox | undefined;
  let none: Sandbox | undefined;
  let hostPort: number;
  let n = 0;

  before(async () => {
    await ensureAssets();
    ({ tmp, bundleDir, spec, rootfs } = await defaultBundle("moat-vm-net-test-"));
    hostPort = await freePort();
    const backend = new VmBackend();
    const [a, b2] = await Promise.allSettled([
      backend.createSandbox({
        id: "vm-net-nat",
        stateDir: join(tmp, "state-nat"),
        network: "nat",
        ports: [{ host: hostPort, guest: 8080 }],
      }),
      backend.createSandbox({ id: "vm-net-none", stateDir: join(tmp, "state-none"), network: "none" }),
    ]);
    if (a.status === "fulfilled") nat = a.value;
    if (b2.status === "fulfilled") none = b2.value;
    if (a.status === "rejected") throw a.reason;
    if (b2.status === "rejected") throw b2.reason;
  });

  after(async () => {
    try {
      await Promise.all([nat?.destroy(), none?.destroy()]);
      assert.deepEqual(qemuProcessesMentioning(tmp), [], "no QEMU outlives destroy()");
      assert.deepEqual(passtChildren(), [], "no passt outlives destroy()");
      assert.equal(existsSync(join(tmp, "state-nat")), false);
      assert.equal(existsSync(join(tmp, "state-none")), false);
    } finally {
      for (const pid of [...qemuProcessesMentioning(tmp), ...passtChildren()]) process.kill(pid, "SIGKILL");
      if (bundleDir) await removeBundle(bundleDir).catch(() => {});
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  const run = (sb: Sandbox, args: string[]) => startIn(sb, { bundleDir, spec, rootfs }, `c${++n}`, args);

  it("forwards a host loopback port to a container's listening port", async () => {
    const server = await run(nat!, ["sh", "-c", "echo hello-from-guest | nc -l -p 8080"]);
    // Until the container listens, passt accepts on the host and closes at once.
    let got = "";
    for (let i = 0; i < 100 && got === ""; i++) {
      got = await readFrom(hostPort);
      if (got === "") await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(got, "hello-from-guest\n");
    assert.equal((await server.done).status, 0, server.stderr.text());
    assert.equal(server.stdout.text(), "hello-from-host\n");
    await nat!.delete(server.id);
  });

  it("serves a container that speaks first through a port forward", async () => {
    // passt leaves the handshake of a forwarded connection half-open until the client
    // sends; moat completes it, so a server's greeting reaches a client that waits for it.
    const server = await run(nat!, ["sh", "-c", "echo banner-from-guest | nc -l -p 8080"]);
    let got = "";
    const deadline = Date.now() + 40_000;
    while (got === "" && Date.now() < deadline) {
      got = await firstLineFrom(hostPort);
      if (got === "") await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(got, "banner-from-guest\n");
    assert.equal((await server.done).status, 0, server.stderr.text());
    await nat!.delete(server.id);
  });

  it("keeps the host's loopback services out of a container's reach", async () => {
    let hits = 0;
    const secret = createServer((s) => {
      hits++;
      s.on("error", () => {});
      s.end("host-loopback-secret\n");
    });
    await new Promise<void>((res) => secret.listen(0, "127.0.0.1", res));
    const port = (secret.address() as { port: number }).port;
    // The gateway (which slirp mapped to the host's 127.0.0.1) and the host's own addresses.
    const targets = [
      "10.0.2.2",
      ...Object.values(networkInterfaces())
        .flat()
        .filter((a) => a?.family === "IPv4" && !a.internal)
        .map((a) => a!.address),
    ];
    try {
      const script = targets
        .map((t) => `out=$(nc -w 2 ${t} ${port} </dev/null 2>&1); echo "${t}: rc=$? $out"`)
        .join("; ");
      const r = await run(nat!, ["sh", "-c", script]);
      assert.equal((await r.done).status, 0, r.stderr.text());
      for (const t of targets)
        assert.match(r.stdout.text(), new RegExp(`^${t.replaceAll(".", "\\.")}: rc=1 `, "m"));
      assert.doesNotMatch(r.stdout.text(), /host-loopback-secret/);
      assert.equal(hits, 0, "a container connected to a service on the host's 127.0.0.1");
    } finally {
      secret.close();
    }
  });

  it("gives a nat guest eth0 at its fixed addresses and each container passt's DNS forwarder", async () => {
    const r = await run(nat!, ["sh", "-c", "cat /etc/resolv.conf; ip -4 addr show dev eth0; ip route"]);
    assert.equal((await r.done).status, 0, r.stderr.text());
    assert.match(r.stdout.text(), /^nameserver 10\.0\.2\.3$/m);
    assert.match(r.stdout.text(), /inet 10\.0\.2\.15\/24 /);
    assert.match(r.stdout.text(), /^default via 10\.0\.2\.2 dev eth0/m);
    // Only the container's overlay got the file; the image on the host is untouched.
    const hostFile = join(rootfs, "etc/resolv.conf");
    assert.ok(!existsSync(hostFile) || !readFileSync(hostFile, "utf8").includes("10.0.2.3"));
  });

  it("gives a none guest no network device but loopback", async () => {
    const r = await run(none!, ["sh", "-c", "cat /proc/net/dev; cat /etc/resolv.conf 2>/dev/null; exit 0"]);
    assert.equal((await r.done).status, 0, r.stderr.text());
    const ifaces = r.stdout
      .text()
      .split("\n")
      .filter((l) => l.includes(":") && !l.includes("|"))
      .map((l) => l.split(":")[0]!.trim());
    assert.deepEqual(ifaces, ["lo"]);
    assert.doesNotMatch(r.stdout.text(), /10\.0\.2\.3/);
  });

  it("refuses a host port that is in use, leaving nothing behind", async () => {
    const busy: Server = createServer();
    await new Promise<void>((res) => busy.listen(0, "127.0.0.1", res));
    const port = (busy.address() as { port: number }).port;
    const stateDir = join(tmp, "state-busy");
    try {
      await assert.rejects(
        new VmBackend().createSandbox({ id: "vm-net-busy", stateDir, ports: [{ host: port, guest: 80 }] }),
        (e: unknown) => isMoatError(e, "EBUSY") && e.message.includes(`127.0.0.1:${port} is already in use`),
      );
      assert.equal(existsSync(stateDir), false);
      assert.deepEqual(qemuProcessesMentioning(stateDir), []);
    } finally {
      busy.close();
    }
  });

  it("refuses port forwards without a network, and bad ports", async () => {
    const stateDir = join(tmp, "state-bad");
    await assert.rejects(
      new VmBackend().createSandbox({
        id: "x",
        stateDir,
        network: "none",
        ports: [{ host: 1234, guest: 80 }],
      }),
      (e: unknown) => isMoatError(e, "EINVAL") && /without a network/.test(e.message),
    );
    await assert.rejects(
      new VmBackend().createSandbox({ id: "x", stateDir, ports: [{ host: 0, guest: 80 }] }),
      (e: unknown) => isMoatError(e, "EINVAL") && /port 0 is not a TCP port/.test(e.message),
    );
    assert.equal(existsSync(stateDir), false);
  });
});
