// The guest's network: the NIC the host gave it, and each container's resolver.
// Containers share the guest's network namespace (the pod model): they reach each other
// over loopback and share the sandbox's one NIC, so the NIC is configured once per guest.
// Kept apart because it is the one part that depends on the host's side of the network
// (slirp's fixed addresses, GUEST_NET).
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { Code, TtrpcError } from "../ttrpc/messages.js";
import { run } from "./busybox.js";
import { GUEST_NET } from "./protocol.js";
import { resolveInRoot } from "./rootpath.js";

let nic: Promise<void> | undefined;

/**
 * Address and route for the NIC the host gave the guest (the same in every guest: the
 * host's side of the network tells guests apart). The agent does it as it starts, so a
 * VM template holds a guest whose network is ready; CreateSandbox does it otherwise.
 */
export function configureNic(): Promise<void> {
  nic ??= (async () => {
    await waitForNic();
    await run([
      "sh",
      "-c",
      [
        "set -e",
        "ip link set eth0 up",
        `ip addr add ${GUEST_NET.address} dev eth0`,
        `ip route add default via ${GUEST_NET.gateway} dev eth0`,
      ].join("\n"),
    ]);
  })();
  // A failed attempt may be made again by the next caller.
  nic.catch(() => {
    nic = undefined;
  });
  return nic;
}

/** Whether the host gave this guest a NIC: a virtio device of type 1 (net), bound or not yet. */
export function hasNic(): boolean {
  try {
    return readdirSync("/sys/bus/virtio/devices").some((d) => {
      try {
        return readFileSync(`/sys/bus/virtio/devices/${d}/device`, "utf8").trim() === "0x0001";
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** virtio_net was loaded by /init; its probe may still be finishing. */
async function waitForNic(): Promise<void> {
  for (let i = 0; i < 200 && !existsSync("/sys/class/net/eth0"); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  if (!existsSync("/sys/class/net/eth0"))
    throw new TtrpcError(Code.FAILED_PRECONDITION, "network nat was asked for, but the guest has no eth0");
}

/**
 * Point the container's resolver at slirp's DNS forwarder. The file is written into
 * the overlay's upper layer; its path is resolved inside the rootfs so a symlink in the
 * image cannot redirect the write into the guest.
 */
export function writeResolvConf(rootfs: string): void {
  const path = resolveInRoot(rootfs, "/etc/resolv.conf");
  try {
    if (lstatSync(path).isDirectory()) return;
  } catch {
    // absent: created below
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileSync(path, `nameserver ${GUEST_NET.dns}\n`, { mode: 0o644 });
}
