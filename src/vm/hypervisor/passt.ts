// passt, the user-mode network of a VM with network "nat": one passt process per VM,
// running as nobody in its own namespaces, turns the guest's Ethernet frames into the
// host's TCP/UDP sockets. It is started under `setpriv --pdeathsig SIGKILL` like QEMU;
// passt drops that when it changes user, so it is also started with --one-off on a
// socketpair whose other end only moat holds: when moat dies, or destroy() closes it,
// passt sees the end of its only client and exits. Like QEMU it runs in a session of its
// own, out of reach of the terminal's ^C.
import { type ChildProcess, spawn } from "node:child_process";
import { Socket } from "node:net";
import { GUEST_NET } from "../../agent/protocol.js";
import { MoatError } from "../../spec/errors.js";
import { closeFd, SOCK_STREAM, socketpair } from "../../sys/socket.js";
import type { UserNetConfig } from "./hypervisor.js";

export const PASST_BINARY = "passt";

// The agent configures eth0 statically with GUEST_NET; passt is told the same.
const [GUEST_ADDRESS, GUEST_PREFIX] = GUEST_NET.address.split("/") as [string, string];
export const GATEWAY_ADDRESS: string = GUEST_NET.gateway;
/** passt forwards DNS queries sent here to the host's resolver. */
const DNS_ADDRESS: string = GUEST_NET.dns;

/** The descriptor number passt finds its end of the socketpair at. */
const PASST_FD = 3;

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** passt's arguments, without the binary. Pure, so every option is unit-tested. */
export function passtArgv(n: UserNetConfig, fd = PASST_FD): string[] {
  const argv = [
    "--foreground",
    "--quiet",
    "--ipv4-only",
    // Serve the socketpair's one client and exit when it goes away.
    "--one-off",
    "--fd",
    String(fd),
    "--address",
    GUEST_ADDRESS,
    "--netmask",
    GUEST_PREFIX,
    "--gateway",
    GATEWAY_ADDRESS,
    // Without this, traffic to the gateway address goes to the host's 127.0.0.1.
    "--no-map-gw",
    "--dns-forward",
    DNS_ADDRESS,
    // The agent configures eth0 itself; passt needs to answer nothing but ARP.
    "--no-dhcp",
    "--no-dhcpv6",
    "--no-ndp",
    "--no-ra",
    "--udp-ports",
    "none",
  ];
  const tcp: string[] = [];
  const seen = new Set<string>();
  for (const f of n.portForwards ?? []) {
    checkPort("host port", f.host);
    checkPort("guest port", f.guest);
    const addr = f.hostAddress ?? "127.0.0.1";
    if (!IPV4.test(addr))
      throw new MoatError("EINVAL", `host address "${addr}" for port ${f.host} must be an IPv4 address`);
    const key = `${addr}:${f.host}`;
    if (seen.has(key)) throw new MoatError("EINVAL", `host port ${key} is forwarded twice`);
    seen.add(key);
    tcp.push("--tcp-ports", `${addr}/${f.host}:${f.guest}`);
  }
  argv.push(...(tcp.length > 0 ? tcp : ["--tcp-ports", "none"]));
  return argv;
}

function checkPort(what: string, p: number): void {
  if (!Number.isInteger(p) || p < 1 || p > 65535)
    throw new MoatError("EINVAL", `${what} ${p} is not a TCP port: use a whole number from 1 to 65535`);
}

export interface PasstProcess {
  readonly child: ChildProcess;
  /** moat's end of the socketpair: Ethernet frames, each with a 4-byte length. */
  readonly socket: Socket;
  /** passt's last words, for messages. */
  stderr(): string;
}

const STDERR_KEEP = 4096;

export function startPasst(n: UserNetConfig, binary = PASST_BINARY): PasstProcess {
  const argv = passtArgv(n);
  const [mine, theirs] = socketpair(SOCK_STREAM, true);
  let child: ChildProcess;
  try {
    child = spawn("setpriv", ["--pdeathsig", "SIGKILL", "--", binary, ...argv], {
      stdio: ["ignore", "ignore", "pipe", theirs],
      detached: true,
    });
  } catch (e) {
    closeFd(mine);
    throw e;
  } finally {
    closeFd(theirs);
  }
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => {
    stderr = (stderr + d).slice(-STDERR_KEEP);
  });
  const socket = new Socket({ fd: mine, readable: true, writable: true });
  // A passt that dies early resets its end; its exit status is what gets reported, and an
  // unhandled 'error' would crash moat instead.
  socket.on("error", () => {});
  return {
    child,
    socket,
    stderr: () =>
      stderr
        .split("\n")
        // passt also tries syslog, which a host without one answers with noise.
        .filter((l) => l.trim() !== "" && !l.startsWith("Failed to send"))
        .join("\n"),
  };
}

/** Why passt could not run, as a message that says what to install. */
export function passtMissing(binary = PASST_BINARY): MoatError {
  return new MoatError(
    "ENOENT",
    `${binary} is not installed, and network "nat" needs it: install the passt package, or use network none`,
  );
}
