// KVM or TCG. /dev/kvm opening is not enough: on some nested hosts (a PVM host, for
// one) KVM exists but a stock guest dies with "KVM internal error: emulation failure".
// So KVM is chosen only after a real guest has booted with it, and the verdict is
// cached per host kernel so the probe boot is paid once, not on every start.
import { constants } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { release } from "node:os";
import { join } from "node:path";
import writeFileAtomic from "write-file-atomic";
import type { Accel } from "./hypervisor.js";

export const ACCEL_CACHE = "accel.json";

export interface AccelChoice {
  readonly accel: Accel;
  readonly reason: string;
}

interface CacheEntry extends AccelChoice {
  readonly hostKernel: string;
  readonly kvmDevice: string;
}

export interface ChooseAccelOptions {
  /** Where accel.json is kept (the guest asset directory). */
  readonly cacheDir: string;
  /** Boot the real guest under KVM; resolves if it ran, rejects with the reason if not. */
  readonly probe: () => Promise<void>;
  readonly kvmDevice?: string;
}

export async function chooseAccel(opts: ChooseAccelOptions): Promise<AccelChoice> {
  const dev = opts.kvmDevice ?? "/dev/kvm";
  const cacheFile = join(opts.cacheDir, ACCEL_CACHE);
  const opened = await canOpen(dev);
  let choice: AccelChoice;
  if (opened !== true) {
    // Cheap to re-check every time, so a host that gains KVM picks it up at once.
    choice = { accel: "tcg", reason: `${dev} cannot be opened (${opened}); using TCG (software emulation)` };
  } else {
    const cached = await readCache(cacheFile);
    if (cached && cached.hostKernel === release() && cached.kvmDevice === dev) return cached;
    try {
      await opts.probe();
      choice = { accel: "kvm", reason: `a probe guest booted under KVM on ${dev}` };
    } catch (e) {
      const why = (e instanceof Error ? e.message : String(e)).split("\n").slice(0, 12).join("\n");
      choice = { accel: "tcg", reason: `${dev} opens but a probe guest failed under KVM; using TCG. ${why}` };
    }
  }
  const entry: CacheEntry = { ...choice, hostKernel: release(), kvmDevice: dev };
  await writeFileAtomic(cacheFile, `${JSON.stringify(entry, null, 2)}\n`).catch(() => {
    // A read-only asset dir only costs a probe next time.
  });
  return choice;
}

/** The cached verdict, for `moat` to show; undefined before the first probe. */
export async function readCache(file: string): Promise<CacheEntry | undefined> {
  try {
    const c = JSON.parse(await readFile(file, "utf8")) as CacheEntry;
    return c.accel === "kvm" || c.accel === "tcg" ? c : undefined;
  } catch {
    return undefined;
  }
}

async function canOpen(dev: string): Promise<true | string> {
  try {
    const fh = await open(dev, constants.O_RDWR);
    await fh.close();
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}
