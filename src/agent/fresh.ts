// A guest made fresh at CreateSandbox: host entropy and the host's clock, applied by the
// guest's moat-fresh helper before any container exists. Kept apart because it is what
// keeps clones of one VM template from sharing random numbers, whatever else changes.
import { execFile } from "node:child_process";
import { Code, TtrpcError } from "../ttrpc/messages.js";
import { FRESH_HELPER } from "./protocol.js";

/** Reseed the guest's CRNG from host entropy and take the host's clock (moat-fresh.c). */
export function freshen(entropy: Uint8Array, unixTimeMs: number): Promise<void> {
  if (entropy.length < 32 || entropy.length > 512)
    throw new TtrpcError(Code.INVALID_ARGUMENT, `entropy must be 32-512 bytes, got ${entropy.length}`);
  if (!Number.isSafeInteger(unixTimeMs) || unixTimeMs <= 0)
    throw new TtrpcError(Code.INVALID_ARGUMENT, `unix_time_ms ${unixTimeMs} is not a time`);
  return new Promise((resolve, reject) => {
    const child = execFile(FRESH_HELPER, [String(unixTimeMs)], (err, _out, stderr) => {
      if (err) reject(new TtrpcError(Code.INTERNAL, `moat-fresh failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
    child.stdin!.end(entropy);
  });
}
