// The guest's Ethernet frames pass through moat on their way from QEMU to passt, and
// moat drops the ones that would reach the host itself. passt (Debian bookworm's
// 2023-03 build, measured) connects a guest TCP SYN addressed to 127.0.0.1 or 0.0.0.0 to
// the host's loopback, and --no-map-gw only stops the gateway address from being
// rewritten to loopback: a container with CAP_NET_RAW, or a compromised guest kernel,
// could still craft such a frame. Filtering here, outside the guest, makes the rule hold
// whatever runs inside it.

import type { Socket } from "node:net";
import { isIPv4 } from "node:net";
import { HandshakeCompleter } from "./passt-handshake.js";

const ETH_HEADER = 14;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;
/** QEMU's stream netdev and passt frame each packet with a 4-byte big-endian length. */
const LENGTH_PREFIX = 4;
/** An IPv4 packet is at most 65535 bytes; passt's largest frame adds the Ethernet header. */
export const MAX_FRAME = 65535 + ETH_HEADER;

/** IPv4 destinations a guest frame may not have, as [network, prefix length]. */
export interface BlockList {
  /** Nothing at all may be sent here. */
  readonly closed: readonly (readonly [number, number])[];
  /**
   * Only TCP segments that cannot open a connection may be sent here: passt shows a
   * connection forwarded in from the host's loopback as coming from the gateway address,
   * and the guest's answers must reach it, but a SYN would make passt connect.
   */
  readonly answerOnly: readonly number[];
}

/** Addresses that always mean "this host" or are never a unicast peer. */
const ALWAYS_CLOSED: readonly (readonly [string, number])[] = [
  ["0.0.0.0", 8], // Linux connects 0.0.0.0 to the local host
  ["127.0.0.0", 8], // the host's loopback
  ["169.254.0.0", 16], // link-local: cloud metadata services live here
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, and the limited broadcast address
];

/**
 * The block list for one VM: loopback and the other special ranges closed; the gateway
 * address and every address of the host's own interfaces (a connection to one of them
 * is local, so it would reach services the host's firewall keeps from the network)
 * answer-only.
 */
export function blockList(answerOnly: readonly string[]): BlockList {
  for (const a of answerOnly) if (!isIPv4(a)) throw new TypeError(`"${a}" is not an IPv4 address`);
  return {
    closed: ALWAYS_CLOSED.map(([a, len]) => [ipv4ToInt(a), len] as const),
    answerOnly: answerOnly.map(ipv4ToInt),
  };
}

export function ipv4ToInt(a: string): number {
  return a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

function inNetwork(dst: number, [net, len]: readonly [number, number]): boolean {
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return (dst & mask) >>> 0 === (net & mask) >>> 0;
}

const IPPROTO_TCP = 6;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

/**
 * Whether a frame the guest sent may go on to passt: ARP, and IPv4 whose destination is
 * not blocked. Everything else (IPv6, VLAN tags, anything passt might parse in a way
 * moat does not) is dropped.
 */
export function allowGuestFrame(frame: Buffer, list: BlockList): boolean {
  if (frame.length < ETH_HEADER) return false;
  const type = frame.readUInt16BE(12);
  if (type === ETHERTYPE_ARP) return true;
  if (type !== ETHERTYPE_IPV4 || frame.length < ETH_HEADER + 20) return false;
  const ip = frame.subarray(ETH_HEADER);
  if (ip[0]! >> 4 !== 4) return false;
  const dst = ip.readUInt32BE(16);
  if (list.closed.some((n) => inNetwork(dst, n))) return false;
  if (!list.answerOnly.includes(dst)) return true;
  // Answers only: unfragmented TCP with its header present, and no bare SYN.
  const headerLen = (ip[0]! & 0x0f) * 4;
  const fragment = ip.readUInt16BE(6) & 0x3fff; // more-fragments flag and offset
  if (ip[9] !== IPPROTO_TCP || fragment !== 0 || headerLen < 20 || ip.length < headerLen + 20) return false;
  const flags = ip[headerLen + 13]!;
  return !(flags & TCP_SYN) || (flags & TCP_ACK) !== 0;
}

/**
 * Relays length-prefixed frames from the guest (QEMU's end) to passt, dropping what
 * allowGuestFrame refuses, and everything from passt back to the guest unchanged, plus
 * the ACKs passt leaves out of forwarded connections' handshakes (passt-handshake.ts),
 * sent between whole frames. A malformed length ends both connections. Returns the number
 * of frames dropped so far.
 */
export function relayGuestFrames(guest: Socket, passt: Socket, list: BlockList): () => number {
  let dropped = 0;
  const handshakes = new HandshakeCompleter();
  const end = () => {
    guest.destroy();
    passt.destroy();
  };
  // Frames from passt go on whole, so an injected ACK never lands inside one.
  const acks: Buffer[] = [];
  const fromGuest = splitFrames(end, (framed) => {
    const frame = framed.subarray(LENGTH_PREFIX);
    if (!allowGuestFrame(frame, list)) {
      dropped++;
      return false;
    }
    const ack = handshakes.fromGuest(frame);
    if (ack) acks.push(lengthPrefixed(ack));
    return true;
  });
  const fromPasst = splitFrames(end, (framed) => {
    handshakes.fromPasst(framed.subarray(LENGTH_PREFIX));
    return true;
  });
  guest.on("data", (chunk: Buffer) => {
    const out = fromGuest(chunk);
    if (out) send(passt, guest, out);
    // The guest's SYN-ACK went on to passt above; its ACK goes back between whole frames.
    if (acks.length > 0) send(guest, passt, Buffer.concat(acks.splice(0)));
  });
  passt.on("data", (chunk: Buffer) => {
    const out = fromPasst(chunk);
    if (out) send(guest, passt, out);
  });
  for (const s of [guest, passt]) {
    s.on("error", end);
    s.on("close", end);
  }
  return () => dropped;
}

/** Write `data` to `to`; while `to` is full, stop reading `from`. */
function send(to: Socket, from: Socket, data: Buffer): void {
  if (!to.write(data)) {
    from.pause();
    to.once("drain", () => from.resume());
  }
}

/**
 * A parser of one direction's length-prefixed frames: fed chunks as they arrive, it
 * returns the whole frames (prefixes included) that `keep` accepts, as one buffer, or
 * undefined if none; partial frames wait for the next chunk. A zero or oversized length
 * calls `bad`.
 */
function splitFrames(
  bad: () => void,
  keep: (framed: Buffer) => boolean,
): (chunk: Buffer) => Buffer | undefined {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let off = 0;
    const out: Buffer[] = [];
    while (pending.length - off >= LENGTH_PREFIX) {
      const len = pending.readUInt32BE(off);
      if (len === 0 || len > MAX_FRAME) {
        bad();
        return undefined;
      }
      if (pending.length - off < LENGTH_PREFIX + len) break;
      const framed = pending.subarray(off, off + LENGTH_PREFIX + len);
      if (keep(framed)) out.push(framed);
      off += LENGTH_PREFIX + len;
    }
    // Both copied (concat always copies): what is passed on and what waits keep no large
    // chunk alive.
    const whole = out.length > 0 ? Buffer.concat(out) : undefined;
    pending = Buffer.from(pending.subarray(off));
    return whole;
  };
}

function lengthPrefixed(frame: Buffer): Buffer {
  const len = Buffer.alloc(LENGTH_PREFIX);
  len.writeUInt32BE(frame.length);
  return Buffer.concat([len, frame]);
}

/**
 * A gratuitous ARP announcing the guest's address from its MAC, length-prefixed. passt
 * sends frames to the last source MAC it saw and has seen none before the guest first
 * speaks (the IPv6 frames a Linux guest sends on link-up never get past the filter), so
 * a connection forwarded into a quiet guest would go to MAC 00:00:00:00:00:00.
 */
export function announceGuest(mac: string, address: string): Buffer {
  const hw = Buffer.from(mac.split(":").map((h) => Number.parseInt(h, 16)));
  const ip = Buffer.from(address.split(".").map(Number));
  if (hw.length !== 6 || !isIPv4(address)) throw new TypeError(`bad MAC ${mac} or address ${address}`);
  const frame = Buffer.alloc(ETH_HEADER + 28);
  frame.fill(0xff, 0, 6);
  hw.copy(frame, 6);
  frame.writeUInt16BE(ETHERTYPE_ARP, 12);
  const arp = frame.subarray(ETH_HEADER);
  arp.writeUInt16BE(1, 0); // Ethernet
  arp.writeUInt16BE(ETHERTYPE_IPV4, 2);
  arp[4] = 6;
  arp[5] = 4;
  arp.writeUInt16BE(1, 6); // request, as gratuitous ARP is usually sent
  hw.copy(arp, 8);
  ip.copy(arp, 14);
  ip.copy(arp, 24);
  return lengthPrefixed(frame);
}
