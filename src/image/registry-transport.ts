// The HTTP side of the registry client: which scheme a registry speaks (HTTPS first,
// plain HTTP only for loopback or --insecure), per-exchange timeouts, bounded body reads,
// and fetch failures turned into MoatErrors.
import { MoatError } from "../spec/errors.js";
import { isValidRegistryHost, registryApiHost } from "./reference.js";
import {
  isCertificateError,
  isConnectionRefused,
  isNotTlsError,
  networkError,
  RegistryError,
} from "./registry-errors.js";

export type Scheme = "https" | "http";

export const DEFAULT_TIMEOUT_MS = 30_000;

/** One timer per exchange: it bounds the wait for headers, then the silence between chunks. */
export class Deadline {
  readonly controller = new AbortController();
  timedOut = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ms: number) {
    this.rearm();
  }

  rearm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new Error("moat registry timeout"));
    }, this.ms);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

export interface Exchange {
  res: Response;
  deadline: Deadline;
  where: string;
}

/** A fetch that failed before any response, kept raw so the scheme probe can classify it. */
class SendFailure extends Error {
  constructor(
    readonly error: unknown,
    readonly timedOut: boolean,
  ) {
    super("send failed", { cause: error });
  }
}

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === "localhost" || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // the connection is being dropped anyway
  }
}

/** Reads at most `limit` bytes of a body; returns undefined when it is larger. */
export async function readLimited(
  res: Response,
  limit: number,
  deadline?: Deadline,
): Promise<Buffer | undefined> {
  if (res.body === null) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    deadline?.rearm();
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return Buffer.concat(chunks, total);
}

export interface TransportOptions {
  insecure?: boolean;
  userAgent?: string;
  timeoutMs?: number;
}

export class Transport {
  readonly host: string;
  readonly hostname: string;
  readonly loopback: boolean;
  readonly insecure: boolean;
  readonly userAgent: string;
  readonly timeoutMs: number;
  private scheme: Scheme | undefined;

  constructor(
    readonly registry: string,
    opts: TransportOptions = {},
  ) {
    this.host = registryApiHost(registry);
    let url: URL | undefined;
    try {
      url = new URL(`https://${this.host}/`);
    } catch {
      url = undefined;
    }
    if (url === undefined || !isValidRegistryHost(this.host)) {
      throw new MoatError(
        "EINVAL",
        `invalid registry ${JSON.stringify(registry)}: give a host name with an optional port, like "registry.example.com" or "localhost:5000"`,
      );
    }
    this.hostname = url.hostname;
    this.loopback = isLoopbackHost(url.hostname);
    this.insecure = opts.insecure === true;
    this.userAgent = opts.userAgent ?? "moat/0.1";
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** One GET on the remembered scheme, or a probe that learns it (HTTPS first). */
  async send(path: string, headers: { accept?: string }, authorization?: string): Promise<Exchange> {
    if (this.scheme !== undefined) return this.sendMapped(this.scheme, path, headers, authorization);
    try {
      const ex = await this.sendOnce("https", path, headers, authorization);
      this.scheme = "https";
      return ex;
    } catch (e) {
      if (!(e instanceof SendFailure)) throw e;
      const plainAllowed = this.loopback || this.insecure;
      const fallback =
        !e.timedOut &&
        !isCertificateError(e.error) &&
        (isNotTlsError(e.error) || isConnectionRefused(e.error));
      if (plainAllowed && fallback) {
        const ex = await this.sendMapped("http", path, headers, authorization);
        this.scheme = "http";
        return ex;
      }
      if (!plainAllowed && isNotTlsError(e.error)) {
        throw new RegistryError(
          "EPROTO",
          `registry ${this.where("https")} does not answer HTTPS: if it is a plain-HTTP registry you trust, pass --insecure`,
          false,
          { cause: e.error },
        );
      }
      const err = networkError(e.error, this.where("https"), e.timedOut, this.timeoutMs);
      if (!plainAllowed && isConnectionRefused(e.error)) {
        err.message += " (if it serves plain HTTP only, pass --insecure)";
      }
      throw err;
    }
  }

  private async sendMapped(
    scheme: Scheme,
    path: string,
    headers: { accept?: string },
    authorization?: string,
  ): Promise<Exchange> {
    try {
      return await this.sendOnce(scheme, path, headers, authorization);
    } catch (e) {
      if (!(e instanceof SendFailure)) throw e;
      throw networkError(e.error, this.where(scheme), e.timedOut, this.timeoutMs);
    }
  }

  where(scheme: Scheme): string {
    const url = new URL(`${scheme}://${this.host}/`);
    return `${this.hostname}:${url.port || (scheme === "https" ? "443" : "80")}`;
  }

  private async sendOnce(
    scheme: Scheme,
    path: string,
    headers: { accept?: string },
    authorization?: string,
  ): Promise<Exchange> {
    const h: Record<string, string> = { "user-agent": this.userAgent };
    if (headers.accept !== undefined) h["accept"] = headers.accept;
    if (authorization !== undefined) h["authorization"] = authorization;
    const deadline = new Deadline(this.timeoutMs);
    try {
      const res = await fetch(`${scheme}://${this.host}${path}`, {
        headers: h,
        signal: deadline.controller.signal,
        redirect: "follow",
      });
      return { res, deadline, where: this.where(scheme) };
    } catch (e) {
      deadline.clear();
      throw new SendFailure(e, deadline.timedOut);
    }
  }
}
