// Turns what fetch and registries report into MoatErrors a person can act on, and marks
// which of them are worth retrying (the pull retries those with p-retry).
import { type ErrorCode, MoatError } from "../spec/errors.js";

export class RegistryError extends MoatError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly retriable: boolean,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** True for failures that may go away on their own: 429, 5xx, broken connections, timeouts. */
export function isRetriable(err: unknown): boolean {
  return err instanceof RegistryError && err.retriable;
}

/** The first Node/undici error code found in an error, its causes or an AggregateError. */
export function errorCode(e: unknown): string | undefined {
  const seen = new Set<unknown>();
  let cur: unknown = e;
  while (cur !== null && typeof cur === "object" && !seen.has(cur)) {
    seen.add(cur);
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string") return code;
    const errors = (cur as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      const inner = errorCode(errors[0]);
      if (inner !== undefined) return inner;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function innermostMessage(e: unknown): string {
  let cur: unknown = e;
  let msg = e instanceof Error ? e.message : String(e);
  for (let i = 0; i < 8 && cur instanceof Error; i++) {
    msg = cur.message;
    cur = cur.cause;
  }
  return msg.split("\n")[0]!.trim();
}

const CERT_CODE =
  /^(CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)/;

export function isCertificateError(e: unknown): boolean {
  const code = errorCode(e);
  return code !== undefined && CERT_CODE.test(code);
}

/** The far end answered, but not with TLS: typical of a plain-HTTP registry asked for HTTPS. */
export function isNotTlsError(e: unknown): boolean {
  const code = errorCode(e);
  if (code === undefined) return false;
  return (
    (code.startsWith("ERR_SSL_") && !CERT_CODE.test(code)) ||
    code === "EPROTO" ||
    code === "ECONNRESET" ||
    code === "UND_ERR_SOCKET"
  );
}

export function isConnectionRefused(e: unknown): boolean {
  return errorCode(e) === "ECONNREFUSED";
}

/** Maps a failed fetch (or a body that broke mid-way) to a MoatError naming host and port. */
export function networkError(e: unknown, where: string, timedOut: boolean, timeoutMs: number): MoatError {
  if (e instanceof MoatError) return e;
  if (timedOut) {
    return new RegistryError(
      "ETIMEDOUT",
      `registry ${where} did not answer within ${timeoutMs / 1000} s: check the network and the registry address, or retry later`,
      true,
      { cause: e },
    );
  }
  const code = errorCode(e);
  const detail = innermostMessage(e);
  const host = where.replace(/:\d+$/, "");
  switch (code) {
    case "ECONNREFUSED":
      return new RegistryError(
        "ECONNREFUSED",
        `cannot connect to registry ${where} (connection refused): check the registry address and port, and that the registry is running`,
        false,
        { cause: e },
      );
    case "ENOTFOUND":
      return new RegistryError(
        "ECONNREFUSED",
        `cannot resolve registry host ${host}: check the registry name (and your DNS settings)`,
        false,
        { cause: e },
      );
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new RegistryError(
        "ECONNREFUSED",
        `cannot reach registry ${where} (${code}): check the network connection and the registry address`,
        false,
        { cause: e },
      );
    case "EAI_AGAIN":
      return new RegistryError(
        "EIO",
        `temporary DNS failure while resolving ${host}: retry in a moment`,
        true,
        { cause: e },
      );
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return new RegistryError(
        "ETIMEDOUT",
        `registry ${where} timed out (${code}): check the network and the registry address, or retry later`,
        true,
        { cause: e },
      );
  }
  if (isCertificateError(e)) {
    return new RegistryError(
      "EPROTO",
      `the TLS certificate of registry ${where} was rejected (${code}: ${detail}): if the registry uses a private CA, run moat with NODE_EXTRA_CA_CERTS=/path/to/ca.pem`,
      false,
      { cause: e },
    );
  }
  if (code?.startsWith("ERR_SSL_")) {
    return new RegistryError(
      "EPROTO",
      `TLS handshake with registry ${where} failed (${code}): check that the address points to an HTTPS registry`,
      false,
      { cause: e },
    );
  }
  if (detail === "bad port") {
    return new RegistryError(
      "EINVAL",
      `the port of registry ${where} is one that fetch refuses to use (a well-known non-HTTP port): serve the registry on another port`,
      false,
      { cause: e },
    );
  }
  return new RegistryError(
    "EIO",
    `connection to registry ${where} failed (${code ?? detail}): retry; if it keeps failing, check the network and the registry`,
    true,
    { cause: e },
  );
}

/** The "errors" array registries put in error bodies, as "CODE: message; ..." (may be empty). */
export function registryErrorDetail(body: string): string {
  try {
    const parsed = JSON.parse(body) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    if (Array.isArray(parsed.errors)) {
      return parsed.errors
        .map((x) => [x.code, x.message].filter((p) => typeof p === "string" && p !== "").join(": "))
        .filter((s) => s !== "")
        .join("; ")
        .slice(0, 500);
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return body
    .replace(/[^\x20-\x7e]+/g, " ")
    .trim()
    .slice(0, 200);
}
