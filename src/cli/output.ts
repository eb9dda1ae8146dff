// How the CLI talks: human text and live progress on a TTY, JSON lines when piped or --json.
import { createLogUpdate } from "log-update";
import { isMoatError } from "../spec/errors.js";

export interface Output {
  /** Results as JSON lines: with --json, or when stdout is not a terminal. */
  json: boolean;
  /** --json was given: errors and events are JSON too. */
  forced: boolean;
  /** A result: printed as a JSON line in json mode, else as text. */
  result(obj: unknown, text: string): void;
  /** Progress: JSON event lines in json mode, a live display on a TTY, nothing otherwise. */
  event(obj: Record<string, unknown>): void;
  /** Replace the live display (TTY only). */
  live(lines: string[]): void;
  done(): void;
}

export function makeOutput(forceJson: boolean): Output {
  const tty = Boolean(process.stderr.isTTY);
  const json = forceJson || !process.stdout.isTTY;
  const update = tty ? createLogUpdate(process.stderr) : undefined;
  return {
    json,
    forced: forceJson,
    result(obj, text) {
      process.stdout.write(json ? `${JSON.stringify(obj)}\n` : `${text}\n`);
    },
    event(obj) {
      if (json && forceJson) process.stdout.write(`${JSON.stringify(obj)}\n`);
    },
    live(lines) {
      if (update && !forceJson) update(lines.join("\n"));
    },
    done() {
      update?.done();
    },
  };
}

/**
 * Print an error the way every moat command does, and give the exit code: docker's 125 for
 * moat's own failures (usage, flags, images, the host), apart from 126/127 (a command that
 * cannot run / is not there) and 128+N, which are the container's exit statuses.
 */
export function reportError(e: unknown, json: boolean): number {
  const code = isMoatError(e) ? e.code : ((e as { code?: string }).code ?? "ERROR");
  const message = e instanceof Error ? withPermissionHint(e) : String(e);
  if (json) process.stderr.write(`${JSON.stringify({ level: "error", code, msg: message })}\n`);
  // Usage errors name their command already ("moat run: unknown flag --foo; ...").
  else process.stderr.write(message.startsWith("moat ") ? `${message}\n` : `moat: ${message}\n`);
  if (process.env.MOAT_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return 125;
}

/** A raw EACCES/EPERM from the system says what to do about it (moat's own errors already do). */
function withPermissionHint(e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (isMoatError(e) || (code !== "EACCES" && code !== "EPERM")) return e.message;
  return `${e.message}: moat may need root for this; run it as root (sudo), or pass --root DIR (or set MOAT_ROOT=DIR) to a directory you own`;
}

export function humanSize(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
