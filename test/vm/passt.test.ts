// passt and moat's frame filter, driven by a stand-in guest that writes Ethernet frames
// the way QEMU's stream netdev does. Every frame here is addressed to the host's loopback
// or to the guest's fake gateway, which the filter drops: nothing leaves this machine.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server, Socket } from "node:net";
import { after, describe, it } from "node:test";
import { isMoatError } from "../../src/spec/errors.js";
import { SOCK_STREAM, socketpair } from "../../src/sys/socket.js";
import {
  allowGuestFrame,
  announceGuest,
  blockList,
  ipv4ToInt,
  MAX_FRAME,
  relayGuestFrames,
} from "../../src/vm/hypervisor/frame-filter.js";
import { GATEWAY_ADDRESS, type PasstProcess, passtArgv, startPasst } from "../../src/vm/hypervisor/passt.js";
import { GUEST_MAC } from "../../src/vm/hypervisor/qemu-cmdline.js";
import { alive, waitUntil } from "./helpers.js";

const MAC = Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const BROADCAST = Buffer.alloc(6, 0xff);

function ip(a: string): Buffer {
  return Buffer.from(a.split(".").map(Number));
}

function checksum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) + (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function ethernet(type: number, payload: Buffer, dst = BROADCAST): Buffer {
  const h = Buffer.alloc(14);
  dst.copy(h, 0);
  MAC.copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

/** A TCP segment (a SYN unless told other flags) from the guest's address to dst:port. */
function syn(dst: string, port: number, sport: number, flags = 0x02, protocol = 6): Buffer {
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(sport, 0);
  tcp.writeUInt16BE(port, 2);
  tcp.writeUInt32BE(1000, 4);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  tcp.writeUInt16BE(64240, 14);
  const src = ip("10.0.2.15");
  tcp.writeUInt16BE(checksum(Buffer.concat([src, ip(dst), Buffer.from([0, protocol, 0, 20]), tcp])), 16);
  const iph = Buffer.alloc(20);
  iph[0] = 0x45;
  iph.writeUInt16BE(40, 2);
  iph[8] = 64;
  iph[9] = protocol;
  src.copy(iph, 12);
  ip(dst).copy(iph, 16);
  iph.writeUInt16BE(checksum(iph), 10);
  return ethernet(0x0800, Buffer.concat([iph, tcp]));
}

function arpWhoHas(target: string): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(1, 6);
  MAC.copy(a, 8);
  ip("10.0.2.15").copy(a, 14);
  ip(target).copy(a, 24);
  return ethernet(0x0806, a);
}

function framed(frame: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(frame.length);
  return Buffer.concat([len, frame]);
}

/** Splits what passt sends the guest into frames. */
function frameCollector(sock: Socket): Buffer[] {
  const frames: Buffer[] = [];
  let pending = Buffer.alloc(0);
  sock.on("data", (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
      const len = pending.readUInt32BE(0);
      frames.push(pending.subarray(4, 4 + len));
      pending = pending.subarray(4 + len);
    }
  });
  sock.on("error", () => {});
  return frames;
}

/** A loopback-only server that counts the connections it gets. */
async function loopbackServer(): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = createServer((s) => {
    hits++;
    s.on("error", () => {});
    s.end("host secret");
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  return { server, port: (server.address() as { port: number }).port, hits: () => hits };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res();
    else child.once("exit", () => res());
  });
}

describe("passt arguments", () => {
  it("never maps the gateway to loopback, stays in the foreground and serves one client", () => {
    const argv = passtArgv({});
    for (const f of ["--no-map-gw", "--foreground", "--one-off", "--ipv4-only", "--no-dhcp"])
      assert.ok(argv.includes(f), f);
    const after = (flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
    assert.deepEqual(after("--fd"), ["3"]);
    assert.deepEqual(after("--address"), ["10.0.2.15"]);
    assert.deepEqual(after("--netmask"), ["24"]);
    assert.deepEqual(after("--gateway"), ["10.0.2.2"]);
    assert.deepEqual(after("--dns-forward"), ["10.0.2.3"]);
    assert.deepEqual(after("--tcp-ports"), ["none"]);
    assert.deepEqual(after("--udp-ports"), ["none"]);
  });

  it("forwards ports from the host's loopback unless told another address", () => {
    const argv = passtArgv({
      portForwards: [
        { host: 18080, guest: 80 },
        { host: 2222, guest: 22, hostAddress: "0.0.0.0" },
      ],
    });
    const specs = argv.flatMap((a, i) => (a === "--tcp-ports" ? [argv[i + 1]] : []));
    assert.deepEqual(specs, ["127.0.0.1/18080:80", "0.0.0.0/2222:22"]);
  });

  it("rejects bad port forwards", () => {
    const bad = (portForwards: { host: number; guest: number; hostAddress?: string }[], re: RegExp) =>
      assert.throws(
        () => passtArgv({ portForwards }),
        (e: unknown) => isMoatError(e, "EINVAL") && re.test(e.message),
      );
    bad([{ host: 0, guest: 80 }], /host port 0 is not a TCP port/);
    bad([{ host: 80, guest: 65536 }], /guest port 65536/);
    bad([{ host: 1.5, guest: 80 }], /host port 1.5/);
    bad([{ host: 80, guest: 80, hostAddress: "127.0.0.1,22" }], /must be an IPv4 address/);
    bad(
      [
        { host: 80, guest: 80 },
        { host: 80, guest: 81 },
      ],
      /forwarded twice/,
    );
  });
});

describe("guest frame filter", () => {
  const list = blockList([GATEWAY_ADDRESS, "192.0.2.2"]);

  it("drops everything for the host's loopback, 0.0.0.0, link-local, multicast and reserved addresses", () => {
    for (const dst of ["127.0.0.1", "127.255.0.9", "0.0.0.0", "0.1.2.3", "169.254.169.254"]) {
      for (const flags of [0x02, 0x12, 0x10, 0x04])
        assert.equal(allowGuestFrame(syn(dst, 80, 1234, flags), list), false, `${dst} ${flags}`);
    }
    for (const dst of ["224.0.0.1", "255.255.255.255", "240.0.0.1"])
      assert.equal(allowGuestFrame(syn(dst, 80, 1234), list), false, dst);
  });

  it("lets only answers through to the gateway and the host's own addresses", () => {
    for (const dst of ["10.0.2.2", "192.0.2.2"]) {
      assert.equal(allowGuestFrame(syn(dst, 80, 1234, 0x02), list), false, `SYN to ${dst}`);
      assert.equal(allowGuestFrame(syn(dst, 80, 1234, 0x12), list), true, `SYN+ACK to ${dst}`);
      assert.equal(allowGuestFrame(syn(dst, 80, 1234, 0x18), list), true, `data to ${dst}`);
      assert.equal(allowGuestFrame(syn(dst, 80, 1234, 0x11), list), true, `FIN to ${dst}`);
      assert.equal(allowGuestFrame(syn(dst, 53, 1234, 0, 17), list), false, `UDP to ${dst}`);
      assert.equal(allowGuestFrame(syn(dst, 0, 0, 0, 1), list), false, `ICMP to ${dst}`);
      const fragment = Buffer.from(syn(dst, 80, 1234, 0x10));
      fragment.writeUInt16BE(0x2000, 14 + 6); // more fragments: a later one could carry a SYN
      assert.equal(allowGuestFrame(fragment, list), false, `fragment to ${dst}`);
    }
  });

  it("lets ARP and IPv4 to other addresses through", () => {
    assert.equal(allowGuestFrame(arpWhoHas("10.0.2.2"), list), true);
    for (const dst of ["10.0.2.3", "192.0.2.1", "198.51.100.7", "128.0.0.1"])
      assert.equal(allowGuestFrame(syn(dst, 80, 1234), list), true, dst);
    assert.equal(allowGuestFrame(syn("10.0.2.3", 53, 1234, 0, 17), list), true, "DNS");
  });

  it("drops IPv6, VLAN-tagged, truncated and malformed frames", () => {
    assert.equal(allowGuestFrame(ethernet(0x86dd, Buffer.alloc(60)), list), false);
    assert.equal(allowGuestFrame(ethernet(0x8100, syn("198.51.100.7", 80, 1).subarray(12)), list), false);
    assert.equal(allowGuestFrame(Buffer.alloc(10), list), false);
    assert.equal(allowGuestFrame(ethernet(0x0800, Buffer.alloc(10)), list), false);
    const v6inV4 = Buffer.from(syn("198.51.100.7", 80, 1));
    v6inV4[14] = 0x65;
    assert.equal(allowGuestFrame(v6inV4, list), false);
  });

  it("reads addresses as unsigned numbers", () => {
    assert.equal(ipv4ToInt("255.255.255.255"), 0xffffffff);
    assert.equal(ipv4ToInt("10.0.2.15"), 0x0a00020f);
    assert.throws(() => blockList(["::1"]), TypeError);
  });
});

describe("passt behind the frame filter", () => {
  const cleanups: (() => void)[] = [];
  after(() => {
    for (const c of cleanups.reverse()) c();
  });

  /** passt with the filter in front, and the stand-in guest's socket. */
  function start(portForwards: { host: number; guest: number }[] = []) {
    const passt: PasstProcess = startPasst({ portForwards });
    const [a, b] = socketpair(SOCK_STREAM, true);
    const relayEnd = new Socket({ fd: a, readable: true, writable: true });
    const guest = new Socket({ fd: b, readable: true, writable: true });
    const dropped = relayGuestFrames(relayEnd, passt.socket, blockList([GATEWAY_ADDRESS]));
    const frames = frameCollector(guest);
    cleanups.push(() => {
      guest.destroy();
      passt.socket.destroy();
      if (passt.child.exitCode === null) passt.child.kill("SIGKILL");
    });
    return { passt, guest, dropped, frames };
  }

  it("keeps a guest away from services on the host's loopback", async () => {
    const host = await loopbackServer();
    cleanups.push(() => host.server.close());
    const { guest, dropped, frames } = start();
    guest.write(framed(arpWhoHas("10.0.2.2")));
    // passt answers ARP for the gateway: frames that pass the filter do reach it.
    assert.ok(
      await waitUntil(() => frames.some((f) => f.readUInt16BE(12) === 0x0806), 5_000),
      "no ARP reply from passt",
    );
    let sport = 40000;
    for (const dst of ["127.0.0.1", "0.0.0.0", "127.0.0.2", GATEWAY_ADDRESS])
      guest.write(framed(syn(dst, host.port, sport++)));
    await waitUntil(() => dropped() === 4, 5_000);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(dropped(), 4);
    assert.equal(host.hits(), 0, "a guest frame reached the host's loopback");
    assert.ok(!frames.some((f) => f.readUInt16BE(12) === 0x0800 && f.readUInt16BE(34) === host.port));
  });

  it("is needed: passt alone connects a guest's SYN for 127.0.0.1 to the host, and only a SYN", async () => {
    const host = await loopbackServer();
    cleanups.push(() => host.server.close());
    const passt = startPasst({});
    cleanups.push(() => {
      passt.socket.destroy();
      if (passt.child.exitCode === null) passt.child.kill("SIGKILL");
    });
    passt.socket.on("error", () => {});
    passt.socket.write(framed(syn("127.0.0.1", host.port, 41000)));
    assert.ok(
      await waitUntil(() => host.hits() === 1, 5_000),
      "passt did not connect; is the filter still needed?",
    );
  });

  it("forwards a host loopback port into the guest", async () => {
    const hostPort = await freePort();
    const { passt, frames } = start([{ host: hostPort, guest: 8080 }]);
    // A guest that has sent nothing yet: moat's announcement alone tells passt its MAC.
    passt.socket.write(announceGuest(GUEST_MAC, "10.0.2.15"));
    // passt listens on the host port; a host client's SYN arrives at the guest's port 8080.
    let listening = false;
    for (let i = 0; i < 50 && !listening; i++) {
      listening = await new Promise<boolean>((res) => {
        const c = new Socket();
        c.once("connect", () => {
          c.destroy();
          res(true);
        });
        c.once("error", () => res(false));
        c.connect(hostPort, "127.0.0.1");
      });
      if (!listening) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(listening, `passt is not listening on 127.0.0.1:${hostPort}`);
    const isSynTo8080 = (f: Buffer) =>
      f.subarray(0, 6).equals(MAC) &&
      f.readUInt16BE(12) === 0x0800 &&
      f[23] === 6 &&
      f.subarray(30, 34).equals(ip("10.0.2.15")) &&
      f.readUInt16BE(36) === 8080 &&
      (f[47]! & 0x02) !== 0;
    assert.ok(await waitUntil(() => frames.some(isSynTo8080), 5_000), "no SYN for guest port 8080");
  });

  it("exits when its client goes away, as when moat dies", async () => {
    const passt = startPasst({});
    cleanups.push(() => {
      if (passt.child.exitCode === null) passt.child.kill("SIGKILL");
    });
    const pid = passt.child.pid!;
    assert.ok(await waitUntil(() => /passt/.test(readFileSync(`/proc/${pid}/comm`, "utf8")), 5_000));
    passt.socket.destroy();
    await exited(passt.child);
    assert.equal(alive(pid), false);
  });
});

describe("frame relay", () => {
  it("ends both connections when the guest sends a length no frame can have", async () => {
    const [g1, g2] = socketpair(SOCK_STREAM, true);
    const [p1, p2] = socketpair(SOCK_STREAM, true);
    const sockets = [g1, g2, p1, p2].map((fd) => new Socket({ fd, readable: true, writable: true }));
    const [relayGuest, guest, relayPasst, passtSide] = sockets as [Socket, Socket, Socket, Socket];
    try {
      for (const s of sockets) s.on("error", () => {});
      relayGuestFrames(relayGuest, relayPasst, blockList([]));
      const len = Buffer.alloc(4);
      len.writeUInt32BE(MAX_FRAME + 1);
      guest.write(len);
      const closed = (s: Socket) => new Promise<void>((res) => s.once("close", () => res()));
      passtSide.resume();
      await Promise.all([closed(passtSide), closed(guest)]);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});
