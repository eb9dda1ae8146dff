// Registry authentication pieces that need no network: the WWW-Authenticate parser,
// credentials from a docker config file, and the bearer-token cache.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface Credentials {
  username: string;
  password: string;
}

export interface Challenge {
  /** Lowercased scheme, e.g. "bearer" or "basic". */
  scheme: string;
  /** Parameters with lowercased names, values unquoted. */
  params: Record<string, string>;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * Parses a WWW-Authenticate header (RFC 9110 section 11.6.1): one or more challenges,
 * each a scheme followed by comma-separated name=value parameters whose values may be
 * quoted strings containing commas, "=" and escaped quotes.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let pos = 0;
  const skip = (chars: RegExp) => {
    while (pos < header.length && chars.test(header[pos]!)) pos++;
  };
  const token = (): string => {
    const start = pos;
    while (pos < header.length && TCHAR.test(header[pos]!)) pos++;
    return header.slice(start, pos);
  };
  const quoted = (): string => {
    let out = "";
    pos++; // opening quote
    while (pos < header.length && header[pos] !== '"') {
      if (header[pos] === "\\" && pos + 1 < header.length) pos++;
      out += header[pos];
      pos++;
    }
    pos++; // closing quote (or end of a malformed header)
    return out;
  };

  while (pos < header.length) {
    skip(/[\s,]/);
    if (pos >= header.length) break;
    const scheme = token();
    if (scheme === "") {
      pos++; // not a token character: skip it so the parser always moves on
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      skip(/[\s,]/);
      const start = pos;
      const name = token();
      if (name === "") break;
      skip(/\s/);
      if (header[pos] !== "=") {
        // A bare token here starts the next challenge.
        pos = start;
        break;
      }
      pos++;
      skip(/\s/);
      const value = header[pos] === '"' ? quoted() : token();
      challenge.params[name.toLowerCase()] = value;
    }
  }
  return challenges;
}

/** The names a docker config may use for one registry, reduced to one canonical host. */
function canonicalHost(key: string): string {
  let host = key.trim().toLowerCase();
  host = host.replace(/^[a-z]+:\/\//, "");
  const slash = host.indexOf("/");
  if (slash >= 0) host = host.slice(0, slash);
  if (host === "index.docker.io" || host === "registry-1.docker.io") host = "docker.io";
  return host;
}

function dockerConfigPath(env: NodeJS.ProcessEnv): string {
  const dir = env.DOCKER_CONFIG && env.DOCKER_CONFIG !== "" ? env.DOCKER_CONFIG : join(homedir(), ".docker");
  return join(dir, "config.json");
}

/**
 * Username and password for `registry` from $DOCKER_CONFIG/config.json or
 * ~/.docker/config.json ("auths" entries with a base64 "user:password" in "auth").
 * Returns undefined when there is no file or no usable entry. Credential helpers
 * (credsStore, credHelpers) are not consulted.
 */
export function loadDockerCredentials(registry: string, env = process.env): Credentials | undefined {
  let text: string;
  try {
    text = readFileSync(dockerConfigPath(env), "utf8");
  } catch {
    return undefined;
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    return undefined;
  }
  const auths = (config as { auths?: unknown } | null)?.auths;
  if (typeof auths !== "object" || auths === null) return undefined;
  const wanted = canonicalHost(registry);
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    if (canonicalHost(key) !== wanted || typeof entry !== "object" || entry === null) continue;
    const { auth, username, password } = entry as Record<string, unknown>;
    if (typeof auth === "string" && auth !== "") {
      const decoded = Buffer.from(auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (typeof username === "string" && typeof password === "string" && username !== "") {
      return { username, password };
    }
  }
  return undefined;
}

export function basicAuthorization(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, "utf8").toString("base64")}`;
}

const DEFAULT_TOKEN_LIFETIME_S = 60;
// Renew a little before the issuer's deadline so a token does not expire in flight.
const EXPIRY_MARGIN_MS = 5_000;

export interface TokenResponse {
  token?: unknown;
  access_token?: unknown;
  expires_in?: unknown;
}

/** Bearer tokens per (realm, service, scope), each kept until shortly before it expires. */
export class TokenCache {
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();

  get(key: string, now = Date.now()): string | undefined {
    const hit = this.tokens.get(key);
    if (hit === undefined) return undefined;
    if (hit.expiresAt <= now) {
      this.tokens.delete(key);
      return undefined;
    }
    return hit.token;
  }

  /** Stores a token from an issuer's JSON answer and returns it, or undefined if it has none. */
  put(key: string, answer: TokenResponse, now = Date.now()): string | undefined {
    const token =
      typeof answer.token === "string" && answer.token !== ""
        ? answer.token
        : typeof answer.access_token === "string" && answer.access_token !== ""
          ? answer.access_token
          : undefined;
    if (token === undefined) return undefined;
    const lifetime =
      typeof answer.expires_in === "number" && answer.expires_in > 0
        ? answer.expires_in
        : DEFAULT_TOKEN_LIFETIME_S;
    const ms = lifetime * 1000;
    this.tokens.set(key, { token, expiresAt: now + Math.max(ms - EXPIRY_MARGIN_MS, ms / 2) });
    return token;
  }

  delete(key: string): void {
    this.tokens.delete(key);
  }
}
