// A client for the OCI distribution API (the pull side): ping, manifests, blobs, with
// Basic and Bearer-token authentication. It moves bytes and checks what it can check
// cheaply (manifest digests and sizes); the content store verifies blob digests.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { MoatError } from "../spec/errors.js";
import { MediaType } from "../spec/image.js";
import { checkDigest, isValidRepository, isValidTag } from "./reference.js";
import {
  basicAuthorization,
  type Challenge,
  type Credentials,
  loadDockerCredentials,
  parseWwwAuthenticate,
  TokenCache,
  type TokenResponse,
} from "./registry-auth.js";
import { networkError, RegistryError, registryErrorDetail } from "./registry-errors.js";
import {
  Deadline,
  discard,
  type Exchange,
  isLoopbackHost,
  readLimited,
  Transport,
} from "./registry-transport.js";

export { loadDockerCredentials } from "./registry-auth.js";
export { isRetriable, RegistryError } from "./registry-errors.js";

export interface RegistryClientOptions {
  /** Allow plain HTTP to a non-loopback registry (loopback registries may always use it). */
  insecure?: boolean;
  /** Credentials; without them the docker config file is consulted. */
  credentials?: Credentials;
  userAgent?: string;
  /** Time allowed for a response to start, and between two chunks of a body. */
  timeoutMs?: number;
}

export interface Manifest {
  mediaType: string;
  /** sha256 of `bytes`. */
  digest: string;
  bytes: Buffer;
}

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 16 * 1024;
const MAX_TOKEN_BODY_BYTES = 1024 * 1024;

const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
].join(", ");

type Purpose = "ping" | "manifest" | "blob";

function hashOf(algorithm: string, bytes: Buffer): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

export class RegistryClient {
  readonly registry: string;
  private readonly transport: Transport;
  private readonly explicitCredentials: Credentials | undefined;
  private configCredentials: Credentials | undefined | null = null;
  private usesBasic = false;
  private bearer: { realm: string; service: string | undefined } | undefined;
  private readonly tokens = new TokenCache();
  private readonly pendingTokens = new Map<string, Promise<string>>();

  constructor(registry: string, opts: RegistryClientOptions = {}) {
    this.registry = registry;
    this.transport = new Transport(registry, opts);
    this.explicitCredentials = opts.credentials;
  }

  /** Checks that the registry answers the v2 API (and, with credentials, that they are accepted). */
  async ping(): Promise<void> {
    const creds = this.credentials();
    const ex = await this.transport.send("/v2/", {}, undefined);
    if (ex.res.status === 401 && creds === undefined) {
      // The registry is there; it wants a login that only a pull can ask for.
      ex.deadline.clear();
      await discard(ex.res);
      return;
    }
    const ok = ex.res.status === 401 ? await this.retryAuthorized(ex, "/v2/", {}, undefined, undefined) : ex;
    await this.failUnlessOk(ok, "ping", undefined, undefined);
    ok.deadline.clear();
    await discard(ok.res);
  }

  async getManifest(repository: string, reference: string): Promise<Manifest> {
    this.checkRepository(repository);
    const byDigest = reference.includes(":");
    if (byDigest) {
      checkDigest(reference);
    } else if (!isValidTag(reference)) {
      throw new MoatError(
        "EINVAL",
        `invalid tag ${JSON.stringify(reference)}: use letters, digits, "_", "." or "-" (up to 128), like "latest" or "1.36"`,
      );
    }
    const ex = await this.request(`/v2/${repository}/manifests/${reference}`, repository, {
      accept: MANIFEST_ACCEPT,
    });
    await this.failUnlessOk(ex, "manifest", repository, reference);
    const name = `${this.registry}/${repository}${byDigest ? "@" : ":"}${reference}`;
    const declared = Number(ex.res.headers.get("content-length") ?? "0");
    let bytes: Buffer | undefined;
    try {
      if (declared > MAX_MANIFEST_BYTES) {
        await discard(ex.res);
      } else {
        bytes = await readLimited(ex.res, MAX_MANIFEST_BYTES, ex.deadline);
      }
    } catch (e) {
      throw networkError(e, ex.where, ex.deadline.timedOut, this.transport.timeoutMs);
    } finally {
      ex.deadline.clear();
    }
    if (bytes === undefined) {
      throw new MoatError(
        "EPROTO",
        `the manifest of ${name} is larger than ${MAX_MANIFEST_BYTES / 1024 / 1024} MiB, which no real image needs: refusing to read it; check that the registry is trustworthy`,
      );
    }
    const digest = hashOf("sha256", bytes);
    if (byDigest) {
      const algorithm = reference.slice(0, reference.indexOf(":"));
      const actual = algorithm === "sha256" ? digest : hashOf(algorithm, bytes);
      if (actual !== reference) {
        throw new MoatError(
          "EDIGEST",
          `registry ${this.registry} returned a manifest for ${name} whose digest is ${actual}: the content was altered or corrupted in transit; do not use this registry until this is explained`,
        );
      }
    }
    const announced = ex.res.headers.get("docker-content-digest");
    if (announced?.startsWith("sha256:") && announced !== digest) {
      throw new MoatError(
        "EDIGEST",
        `registry ${this.registry} announced digest ${announced} for ${name} but sent bytes with digest ${digest}: the content was altered or corrupted in transit; retry, and distrust the registry if it persists`,
      );
    }
    return { mediaType: this.manifestMediaType(bytes, ex.res, name), digest, bytes };
  }

  /**
   * Opens a blob for reading. The stream fails (with a retriable EIO) if the body ends before
   * the announced or expected size; `size` is -1 when neither is known.
   */
  async openBlob(
    repository: string,
    digest: string,
    expectedSize?: number,
  ): Promise<{ stream: Readable; size: number }> {
    this.checkRepository(repository);
    checkDigest(digest);
    const ex = await this.request(`/v2/${repository}/blobs/${digest}`, repository, {});
    await this.failUnlessOk(ex, "blob", repository, digest);
    const name = `blob ${digest} of ${this.registry}/${repository}`;
    const header = ex.res.headers.get("content-length");
    const announced = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
    if (expectedSize !== undefined && announced !== undefined && announced !== expectedSize) {
      ex.deadline.clear();
      await discard(ex.res);
      throw new MoatError(
        "EDIGEST",
        `registry ${this.registry} announced ${announced} bytes for ${name}, but the image says ${expectedSize}: the registry serves different content than the manifest describes`,
      );
    }
    const size = announced ?? expectedSize ?? -1;
    const stream = Readable.from(this.blobChunks(ex, name, size), { objectMode: false });
    // A stream destroyed before its first read never runs the generator's cleanup.
    stream.once("close", () => {
      ex.deadline.clear();
      ex.deadline.controller.abort();
    });
    return { stream, size };
  }

  private async *blobChunks(ex: Exchange, name: string, size: number): AsyncGenerator<Buffer> {
    let received = 0;
    let tooMuch = false;
    try {
      if (ex.res.body !== null) {
        for await (const chunk of ex.res.body) {
          ex.deadline.rearm();
          received += chunk.byteLength;
          if (size >= 0 && received > size) {
            tooMuch = true;
            break;
          }
          yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        }
      }
    } catch (e) {
      throw networkError(e, ex.where, ex.deadline.timedOut, this.transport.timeoutMs);
    } finally {
      ex.deadline.clear();
    }
    if (tooMuch) {
      throw new MoatError(
        "EDIGEST",
        `registry ${this.registry} sent more than the ${size} bytes of ${name}: the registry serves different content than the manifest describes`,
      );
    }
    if (size >= 0 && received < size) {
      throw new RegistryError(
        "EIO",
        `the download of ${name} ended after ${received} of ${size} bytes: the connection broke; retry`,
        true,
      );
    }
  }

  private checkRepository(repository: string): void {
    if (!isValidRepository(repository)) {
      throw new MoatError(
        "EINVAL",
        `invalid repository ${JSON.stringify(repository)}: use lowercase path components like "library/busybox"`,
      );
    }
  }

  private manifestMediaType(bytes: Buffer, res: Response, name: string): string {
    let body: unknown;
    try {
      body = JSON.parse(bytes.toString("utf8"));
    } catch {
      throw new MoatError(
        "EPROTO",
        `registry ${this.registry} returned a manifest for ${name} that is not JSON: check the registry address`,
      );
    }
    const fromBody = (body as { mediaType?: unknown } | null)?.mediaType;
    if (typeof fromBody === "string" && fromBody !== "") return fromBody;
    const fromHeader = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
    if (fromHeader === "") {
      throw new MoatError(
        "EPROTO",
        `registry ${this.registry} returned a manifest for ${name} without a media type: the registry does not follow the OCI distribution spec`,
      );
    }
    return fromHeader;
  }

  private credentials(): Credentials | undefined {
    if (this.explicitCredentials !== undefined) return this.explicitCredentials;
    if (this.configCredentials === null) this.configCredentials = loadDockerCredentials(this.registry);
    return this.configCredentials;
  }

  private scopeFor(repository: string | undefined, challenge?: Challenge): string {
    if (repository !== undefined) return `repository:${repository}:pull`;
    return challenge?.params["scope"] ?? "";
  }

  private tokenKey(realm: string, service: string | undefined, scope: string): string {
    return JSON.stringify([realm, service ?? "", scope]);
  }

  /** The Authorization header we already know works for this repository, if any. */
  private knownAuthorization(repository: string | undefined): string | undefined {
    const creds = this.credentials();
    if (this.usesBasic && creds !== undefined) return basicAuthorization(creds);
    if (this.bearer !== undefined) {
      const token = this.tokens.get(
        this.tokenKey(this.bearer.realm, this.bearer.service, this.scopeFor(repository)),
      );
      if (token !== undefined) return `Bearer ${token}`;
    }
    return undefined;
  }

  /** A GET with the known credentials; on 401 it authenticates as the registry asks and retries once. */
  private async request(
    path: string,
    repository: string | undefined,
    headers: { accept?: string },
  ): Promise<Exchange> {
    const known = this.knownAuthorization(repository);
    const ex = await this.transport.send(path, headers, known);
    if (ex.res.status !== 401) return ex;
    return this.retryAuthorized(ex, path, headers, repository, known);
  }

  private async retryAuthorized(
    first: Exchange,
    path: string,
    headers: { accept?: string },
    repository: string | undefined,
    refused: string | undefined,
  ): Promise<Exchange> {
    first.deadline.clear();
    const challenges = parseWwwAuthenticate(first.res.headers.get("www-authenticate") ?? "");
    await discard(first.res);
    const authorization = await this.authorize(challenges, repository, refused);
    const second = await this.transport.send(path, headers, authorization);
    if (second.res.status === 401) {
      second.deadline.clear();
      await discard(second.res);
      throw this.authError(repository, "refused");
    }
    return second;
  }

  private authError(repository: string | undefined, how: "refused" | "missing"): MoatError {
    const target = repository === undefined ? this.registry : `${this.registry}/${repository}`;
    const creds = this.credentials();
    if (how === "missing" || creds === undefined) {
      return new RegistryError(
        "EAUTH",
        `registry ${this.registry} requires credentials for ${target} (or it does not exist there): log in with --creds user:password or a docker config`,
        false,
      );
    }
    return new RegistryError(
      "EAUTH",
      `registry ${this.registry} refused credentials for ${target} (user ${JSON.stringify(creds.username)}): log in with --creds user:password or a docker config`,
      false,
    );
  }

  /** The Authorization header to retry with; `refused` is the one the registry just turned down. */
  private async authorize(
    challenges: Challenge[],
    repository: string | undefined,
    refused: string | undefined,
  ): Promise<string> {
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const creds = this.credentials();
    if (bearer !== undefined) {
      const realm = bearer.params["realm"];
      if (realm === undefined || realm === "") {
        throw new MoatError(
          "EPROTO",
          `registry ${this.registry} asked for a bearer token without saying where to get it (no realm): the registry is misconfigured`,
        );
      }
      this.bearer = { realm, service: bearer.params["service"] };
      const scope = this.scopeFor(repository, bearer);
      const key = this.tokenKey(realm, bearer.params["service"], scope);
      // A parallel request may have fetched a token since ours was sent; only a token the
      // registry has just refused is worth replacing.
      const cached = this.tokens.get(key);
      if (cached !== undefined && `Bearer ${cached}` !== refused) return `Bearer ${cached}`;
      this.tokens.delete(key);
      return `Bearer ${await this.token(key, realm, bearer.params["service"], scope, repository)}`;
    }
    if (challenges.some((c) => c.scheme === "basic")) {
      if (creds === undefined) throw this.authError(repository, "missing");
      this.usesBasic = true;
      return basicAuthorization(creds);
    }
    const offered = challenges.map((c) => c.scheme).join(", ") || "none";
    throw new MoatError(
      "EAUTH",
      `registry ${this.registry} asks for an authentication scheme moat does not support (${offered}): use a registry with Basic or Bearer token authentication`,
    );
  }

  /** One token request per key at a time: parallel layer downloads share it. */
  private token(
    key: string,
    realm: string,
    service: string | undefined,
    scope: string,
    repository: string | undefined,
  ): Promise<string> {
    let pending = this.pendingTokens.get(key);
    if (pending === undefined) {
      pending = this.fetchToken(key, realm, service, scope, repository).finally(() =>
        this.pendingTokens.delete(key),
      );
      this.pendingTokens.set(key, pending);
    }
    return pending;
  }

  private async fetchToken(
    key: string,
    realm: string,
    service: string | undefined,
    scope: string,
    repository: string | undefined,
  ): Promise<string> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      url = new URL("invalid:");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new MoatError(
        "EPROTO",
        `registry ${this.registry} named an unusable token server ${JSON.stringify(realm)}: the registry is misconfigured`,
      );
    }
    const creds = this.credentials();
    if (
      url.protocol === "http:" &&
      creds !== undefined &&
      !isLoopbackHost(url.hostname) &&
      !this.transport.insecure
    ) {
      throw new MoatError(
        "EUNSAFE",
        `registry ${this.registry} wants credentials sent to ${url.origin} over plain HTTP: refusing; pass --insecure only if you trust the network to that host`,
      );
    }
    if (service !== undefined) url.searchParams.set("service", service);
    if (scope !== "") url.searchParams.set("scope", scope);
    const headers: Record<string, string> = {
      "user-agent": this.transport.userAgent,
      accept: "application/json",
    };
    if (creds !== undefined) headers["authorization"] = basicAuthorization(creds);
    const deadline = new Deadline(this.transport.timeoutMs);
    const where = url.host;
    let res: Response;
    let body: Buffer | undefined;
    try {
      res = await fetch(url, { headers, signal: deadline.controller.signal });
      body = await readLimited(res, MAX_TOKEN_BODY_BYTES, deadline);
    } catch (e) {
      throw networkError(e, where, deadline.timedOut, this.transport.timeoutMs);
    } finally {
      deadline.clear();
    }
    if (res.status === 401 || res.status === 403) throw this.authError(repository, "refused");
    if (res.status !== 200) {
      throw this.statusError(res.status, body?.toString("utf8") ?? "", `token server ${where}`, res);
    }
    let answer: TokenResponse;
    try {
      answer = JSON.parse(body?.toString("utf8") ?? "") as TokenResponse;
    } catch {
      answer = {};
    }
    const token = this.tokens.put(key, answer ?? {});
    if (token === undefined) {
      throw new MoatError(
        "EPROTO",
        `token server ${where} of registry ${this.registry} answered without a token: the registry's auth setup is broken`,
      );
    }
    return token;
  }

  /** Throws the MoatError for a non-2xx answer (after authentication), consuming its body. */
  private async failUnlessOk(
    ex: Exchange,
    purpose: Purpose,
    repository: string | undefined,
    reference: string | undefined,
  ): Promise<void> {
    const { res } = ex;
    if (res.status >= 200 && res.status < 300) return;
    let text = "";
    try {
      text = (await readLimited(res, MAX_ERROR_BODY_BYTES, ex.deadline))?.toString("utf8") ?? "";
    } catch {
      // the status alone says enough
    } finally {
      ex.deadline.clear();
    }
    const target = repository === undefined ? this.registry : `${this.registry}/${repository}`;
    if (res.status === 404 && purpose === "manifest") {
      const sep = reference?.includes(":") ? "@" : ":";
      throw new RegistryError(
        "ENOENT",
        `image ${target}${sep}${reference} not found in ${this.registry}: check the name and tag`,
        false,
      );
    }
    if (res.status === 404 && purpose === "blob") {
      throw new RegistryError(
        "ENOENT",
        `blob ${reference} of ${target} not found in ${this.registry}: the image on the registry is incomplete; re-push it or pull another tag`,
        false,
      );
    }
    if (res.status === 404 && purpose === "ping") {
      throw new RegistryError(
        "EPROTO",
        `${this.registry} does not serve the registry API (GET /v2/ answered 404): check the registry address`,
        false,
      );
    }
    if (res.status === 403) {
      throw new RegistryError(
        "EAUTH",
        `registry ${this.registry} denied access to ${target}${text ? ` (${registryErrorDetail(text)})` : ""}: log in with --creds user:password or a docker config for an account that may pull it`,
        false,
      );
    }
    throw this.statusError(res.status, text, `registry ${this.registry}`, res, target);
  }

  private statusError(status: number, body: string, who: string, res: Response, target?: string): MoatError {
    const detail = registryErrorDetail(body);
    const about = target !== undefined ? ` for ${target}` : "";
    const said = detail !== "" ? ` (${detail})` : "";
    if (status === 429) {
      const after = res.headers.get("retry-after");
      return new RegistryError(
        "EIO",
        `${who} is rate-limiting requests${about} (HTTP 429${said}): wait${after ? ` ${after} s` : ""} and retry, or log in to get a higher limit`,
        true,
      );
    }
    if (status >= 500) {
      return new RegistryError(
        "EIO",
        `${who} failed${about} with HTTP ${status}${said}: the registry has a problem; retry later`,
        true,
      );
    }
    return new RegistryError(
      "EPROTO",
      `${who} answered HTTP ${status}${about}${said}: the request was not understood; check the registry address and image name`,
      false,
    );
  }
}
