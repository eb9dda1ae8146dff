// The ACK moat adds to a forwarded connection's handshake, checked field by field on
// frames built here: addresses and ports from passt's SYN, passt's ISN + 1, the guest's
// ISN + 1, and checksums a receiver accepts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HandshakeCompleter } from "../../src/vm/hypervisor/passt-handshake.js";

const PASST_MAC = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];
const GUEST_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

function frame(o: {
  fromMac: number[];
  toMac: number[];
  src: number[];
  dst: number[];
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
}): Buffer {
  const f = Buffer.alloc(14 + 20 + 24);
  Buffer.from(o.toMac).copy(f, 0);
  Buffer.from(o.fromMac).copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  const ip = f.subarray(14);
  ip[0] = 0x45;
  ip.writeUInt16BE(44, 2);
  ip[8] = 64;
  ip[9] = 6;
  Buffer.from(o.src).copy(ip, 12);
  Buffer.from(o.dst).copy(ip, 16);
  const tcp = ip.subarray(20);
  tcp.writeUInt16BE(o.srcPort, 0);
  tcp.writeUInt16BE(o.dstPort, 2);
  tcp.writeUInt32BE(o.seq, 4);
  tcp.writeUInt32BE(o.ack, 8);
  tcp[12] = 6 << 4; // one option word (an MSS option, as a SYN has)
  tcp[13] = o.flags;
  tcp.writeUInt16BE(29200, 14);
  return f;
}

/** The Internet checksum over data that includes its own checksum: 0 when it is right. */
function verify(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) sum += data.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const passtSyn = (seq: number) =>
  frame({
    fromMac: PASST_MAC,
    toMac: GUEST_MAC,
    src: [10, 0, 2, 2],
    dst: [10, 0, 2, 15],
    srcPort: 40000,
    dstPort: 8080,
    seq,
    ack: 0,
    flags: 0x02,
  });
const guestSynAck = (seq: number, ack: number) =>
  frame({
    fromMac: GUEST_MAC,
    toMac: PASST_MAC,
    src: [10, 0, 2, 15],
    dst: [10, 0, 2, 2],
    srcPort: 8080,
    dstPort: 40000,
    seq,
    ack,
    flags: 0x12,
  });

describe("completing passt's forwarded handshakes", () => {
  it("answers the guest's SYN-ACK with passt's ACK", () => {
    const h = new HandshakeCompleter();
    h.fromPasst(passtSyn(0xffffffff)); // the ISN wraps: the ACK's sequence number is 0
    const ack = h.fromGuest(guestSynAck(1000, 0));
    assert.ok(ack);
    assert.deepEqual([...ack.subarray(0, 6)], GUEST_MAC);
    assert.deepEqual([...ack.subarray(6, 12)], PASST_MAC);
    const ip = ack.subarray(14, 34);
    assert.equal(ip.readUInt16BE(2), 40);
    assert.deepEqual([...ip.subarray(12, 16)], [10, 0, 2, 2]);
    assert.deepEqual([...ip.subarray(16, 20)], [10, 0, 2, 15]);
    assert.equal(verify(ip), 0, "IPv4 header checksum");
    const tcp = ack.subarray(34);
    assert.equal(tcp.readUInt16BE(0), 40000);
    assert.equal(tcp.readUInt16BE(2), 8080);
    assert.equal(tcp.readUInt32BE(4), 0);
    assert.equal(tcp.readUInt32BE(8), 1001);
    assert.equal(tcp[13], 0x10, "a bare ACK");
    const pseudo = Buffer.concat([ip.subarray(12, 20), Buffer.from([0, 6, 0, 20]), tcp]);
    assert.equal(verify(pseudo), 0, "TCP checksum");
    assert.equal(h.fromGuest(guestSynAck(1000, 0)), undefined, "once per connection");
  });

  it("adds nothing when passt acknowledged by itself, or for SYN-ACKs it did not ask for", () => {
    const h = new HandshakeCompleter();
    h.fromPasst(passtSyn(5000));
    assert.equal(h.fromGuest(guestSynAck(1000, 4242)), undefined, "acknowledges another SYN");
    const ackFromPasst = passtSyn(5001);
    ackFromPasst[14 + 20 + 13] = 0x10;
    h.fromPasst(ackFromPasst);
    assert.equal(h.fromGuest(guestSynAck(1000, 5001)), undefined);
    assert.equal(new HandshakeCompleter().fromGuest(guestSynAck(1, 1)), undefined);
  });
});
