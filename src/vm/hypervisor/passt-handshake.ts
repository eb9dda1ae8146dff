// Completes the TCP handshakes of port-forwarded connections, which Debian bookworm's
// passt (2023-03) leaves open: for a host client's connection to a `-p` port, passt sends
// the guest a SYN and reads its SYN-ACK, but never sends the final ACK; the guest's socket
// stays half-open until the client's first bytes arrive (their segment carries the ACK), so
// a service that speaks first (SSH, SMTP, MySQL) waits forever behind a port forward.
// moat relays every frame between QEMU and passt, so it sends the guest that ACK itself,
// in passt's name: sequence number passt's ISN + 1, acknowledging the guest's SYN. passt's
// own segments then carry the same numbers, so the two never disagree; an ACK passt sends
// later is a harmless duplicate.

const ETH_HEADER = 14;
const ETHERTYPE_IPV4 = 0x0800;
const IPPROTO_TCP = 6;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;
/** Half-open forwarded connections remembered at once; the oldest is forgotten first. */
const MAX_PENDING = 256;

interface Segment {
  readonly src: number;
  readonly dst: number;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly ack: number;
  readonly flags: number;
  readonly window: number;
}

interface PendingSyn {
  /** The Ethernet header and the first 20 bytes of the IPv4 header of passt's SYN. */
  readonly headers: Buffer;
  readonly isn: number;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly window: number;
}

/** The TCP segment in an Ethernet frame, or undefined for anything else. */
function tcpSegment(frame: Buffer): Segment | undefined {
  if (frame.length < ETH_HEADER + 40 || frame.readUInt16BE(12) !== ETHERTYPE_IPV4) return undefined;
  const ip = frame.subarray(ETH_HEADER);
  if (ip[0]! >> 4 !== 4 || ip[9] !== IPPROTO_TCP || (ip.readUInt16BE(6) & 0x3fff) !== 0) return undefined;
  const ihl = (ip[0]! & 0x0f) * 4;
  if (ihl < 20 || ip.length < ihl + 20) return undefined;
  const tcp = ip.subarray(ihl);
  return {
    src: ip.readUInt32BE(12),
    dst: ip.readUInt32BE(16),
    srcPort: tcp.readUInt16BE(0),
    dstPort: tcp.readUInt16BE(2),
    seq: tcp.readUInt32BE(4),
    ack: tcp.readUInt32BE(8),
    flags: tcp[13]!,
    window: tcp.readUInt16BE(14),
  };
}

const key = (peer: number, peerPort: number, guest: number, guestPort: number) =>
  `${peer}:${peerPort}>${guest}:${guestPort}`;

export class HandshakeCompleter {
  /** passt's SYNs to the guest not yet answered, with the headers each came with. */
  private readonly pending = new Map<string, PendingSyn>();

  /** A frame from passt to the guest: remember each connection passt opens. */
  fromPasst(frame: Buffer): void {
    const s = tcpSegment(frame);
    if (!s) return;
    const k = key(s.src, s.srcPort, s.dst, s.dstPort);
    if ((s.flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_SYN) {
      this.pending.delete(k);
      this.pending.set(k, {
        headers: Buffer.from(frame.subarray(0, ETH_HEADER + 20)),
        isn: s.seq,
        srcPort: s.srcPort,
        dstPort: s.dstPort,
        window: s.window,
      });
      if (this.pending.size > MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    } else if (s.flags & (TCP_ACK | TCP_RST)) {
      // passt answered by itself (or gave up): nothing for moat to add.
      this.pending.delete(k);
    }
  }

  /**
   * A frame from the guest to passt: for the guest's SYN-ACK to a SYN passt sent, the ACK
   * to give the guest (an Ethernet frame), else undefined.
   */
  fromGuest(frame: Buffer): Buffer | undefined {
    const s = tcpSegment(frame);
    if (!s || (s.flags & (TCP_SYN | TCP_ACK | TCP_RST)) !== (TCP_SYN | TCP_ACK)) return undefined;
    const k = key(s.dst, s.dstPort, s.src, s.srcPort);
    const syn = this.pending.get(k);
    const next = syn ? (syn.isn + 1) >>> 0 : undefined;
    if (!syn || s.ack !== next) return undefined;
    this.pending.delete(k);
    return ackFrame(syn, next, (s.seq + 1) >>> 0);
  }
}

/**
 * A bare ACK in passt's name, built on the Ethernet and IPv4 headers of passt's SYN: the
 * same addresses and ports, passt's window as it offered it in the SYN.
 */
function ackFrame(syn: PendingSyn, seq: number, ack: number): Buffer {
  const frame = Buffer.alloc(ETH_HEADER + 40);
  syn.headers.copy(frame, 0, 0, ETH_HEADER + 20);
  const ip = frame.subarray(ETH_HEADER, ETH_HEADER + 20);
  ip[0] = 0x45; // IPv4, no options
  ip[1] = 0;
  ip.writeUInt16BE(40, 2);
  ip.writeUInt16BE(0, 4); // id
  ip.writeUInt16BE(0x4000, 6); // don't fragment
  ip[9] = IPPROTO_TCP;
  ip.writeUInt16BE(0, 10);
  ip.writeUInt16BE(checksum(ip), 10);
  const tcp = frame.subarray(ETH_HEADER + 20);
  tcp.writeUInt16BE(syn.srcPort, 0);
  tcp.writeUInt16BE(syn.dstPort, 2);
  tcp.writeUInt32BE(seq, 4);
  tcp.writeUInt32BE(ack, 8);
  tcp[12] = 5 << 4; // header length: 5 words, no options
  tcp[13] = TCP_ACK;
  tcp.writeUInt16BE(syn.window, 14);
  // The checksum covers a pseudo-header: both addresses, the protocol and the TCP length.
  const pseudo = Buffer.alloc(12);
  ip.copy(pseudo, 0, 12, 20);
  pseudo[9] = IPPROTO_TCP;
  pseudo.writeUInt16BE(tcp.length, 10);
  tcp.writeUInt16BE(checksum(Buffer.concat([pseudo, tcp])), 16);
  return frame;
}

/** The Internet checksum (RFC 1071) of `data`. */
function checksum(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < data.length; i += 2) sum += data.readUInt16BE(i);
  if (data.length % 2 === 1) sum += data[data.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
