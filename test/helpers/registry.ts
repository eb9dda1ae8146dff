// Starts Debian's real docker-registry (distribution 2.8) on a free loopback port, in three
// authentication modes, and pushes OCI layouts to it with skopeo.
//   plain:    anonymous pull and push
//   htpasswd: Basic auth from a bcrypt htpasswd file (htpasswd -Bbn, apache2-utils)
//   token:    Bearer tokens from an issuer this helper runs: a loopback HTTP server that
//             checks Basic credentials and signs ES256 JWTs whose x5c certificate (made with
//             openssl) is the registry's rootcertbundle
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createPrivateKey, randomUUID, sign, X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export type RegistryMode = "plain" | "htpasswd" | "token";

export interface Creds {
  username: string;
  password: string;
}

export interface TestRegistry {
  mode: RegistryMode;
  /** "127.0.0.1:PORT", what RegistryClient and references take as the registry. */
  addr: string;
  /** The account the registry accepts (htpasswd and token modes). */
  creds?: Creds;
  /** The registry's filesystem storage (tests corrupt blobs in it). */
  storageDir: string;
  /** How many requests the token issuer has answered (token mode; 0 otherwise). */
  issuerHits(): number;
  /** Kills the registry (and issuer) and removes the temp dirs. Safe to call twice. */
  stop(): Promise<void>;
}

const SERVICE = "moat-test-registry";
const ISSUER = "moat-test-issuer";

/** A port that was free a moment ago (the kernel picks it, so it avoids the bad-port list of fetch). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

interface Issuer {
  server: Server;
  realm: string;
  hits: number;
}

/** An EC P-256 key and a self-signed certificate for `commonName`, valid for 2 days. */
export async function selfSignedCert(keyPath: string, certPath: string, commonName: string): Promise<void> {
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    keyPath,
    "-out",
    certPath,
    "-days",
    "2",
    "-subj",
    `/CN=${commonName}`,
  ]);
}

async function startIssuer(dir: string, creds: Creds): Promise<{ issuer: Issuer; certPath: string }> {
  const keyPath = join(dir, "issuer-key.pem");
  const certPath = join(dir, "issuer-cert.pem");
  await selfSignedCert(keyPath, certPath, "moat-test-token-issuer");
  const key = createPrivateKey(await readFile(keyPath));
  const x5c = new X509Certificate(await readFile(certPath)).raw.toString("base64");

  const issuer: Issuer = { server: createServer(), realm: "", hits: 0 };
  issuer.server.on("request", (req, res) => {
    issuer.hits++;
    const url = new URL(req.url ?? "/", "http://issuer");
    let subject = "";
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const [scheme, value] = auth.split(" ");
      const decoded = Buffer.from(value ?? "", "base64").toString("utf8");
      if (scheme?.toLowerCase() !== "basic" || decoded !== `${creds.username}:${creds.password}`) {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ details: "incorrect username or password" }));
        return;
      }
      subject = creds.username;
    }
    // Like a public registry: anonymous callers may pull repositories under "public/" and
    // nothing else; the account may do anything it asks for.
    const access = url.searchParams
      .getAll("scope")
      .flatMap((s) => s.split(" "))
      .map((s) => s.split(":"))
      .filter((p) => p.length >= 3 && p[0] === "repository")
      .map((p) => ({ name: p.slice(1, -1).join(":"), actions: p.at(-1)!.split(",") }))
      .map(({ name, actions }) => ({
        type: "repository",
        name,
        actions:
          subject !== "" ? actions : name.startsWith("public/") ? actions.filter((a) => a === "pull") : [],
      }))
      .filter((a) => a.actions.length > 0);
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "ES256", x5c: [x5c] };
    const claims = {
      iss: ISSUER,
      sub: subject,
      aud: url.searchParams.get("service") ?? "",
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign("sha256", Buffer.from(signingInput), { key, dsaEncoding: "ieee-p1363" });
    const token = `${signingInput}.${b64url(signature)}`;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    issuer.server.once("error", reject);
    issuer.server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = issuer.server.address();
  if (address === null || typeof address === "string") throw new Error("issuer has no port");
  issuer.realm = `http://127.0.0.1:${address.port}/token`;
  return { issuer, certPath };
}

async function waitForRegistry(addr: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `docker-registry exited (${child.exitCode ?? child.signalCode}; is the docker-registry package installed?):\n${output()}`,
      );
    }
    try {
      const res = await fetch(`http://${addr}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`docker-registry did not answer on ${addr} within 20 s:\n${output()}`);
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

export async function startRegistry(
  mode: RegistryMode,
  creds: Creds = { username: "moat", password: "s3cret, with \"quotes\" and 'spaces'" },
  /** A fixed port (the README's examples name 5000); default: a free one. */
  fixedPort?: number,
): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "moat-registry-"));
  let child: ChildProcess | undefined;
  let issuer: Issuer | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child !== undefined) await killAndWait(child);
    if (issuer !== undefined) {
      issuer.server.closeAllConnections();
      await new Promise<void>((resolve) => issuer!.server.close(() => resolve()));
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = fixedPort ?? (await freePort());
    const addr = `127.0.0.1:${port}`;
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: "warn", accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(dir, "storage") }, delete: { enabled: true } },
      http: { addr, secret: randomUUID() },
    };
    if (mode === "htpasswd") {
      const { stdout } = await run("htpasswd", ["-Bbn", creds.username, creds.password]);
      const htpasswdPath = join(dir, "htpasswd");
      await writeFile(htpasswdPath, stdout);
      config["auth"] = { htpasswd: { realm: "moat-test", path: htpasswdPath } };
    } else if (mode === "token") {
      const started = await startIssuer(dir, creds);
      issuer = started.issuer;
      config["auth"] = {
        token: { realm: issuer.realm, service: SERVICE, issuer: ISSUER, rootcertbundle: started.certPath },
      };
    }
    // YAML is a superset of JSON, so the registry reads this as its config.yml.
    const configPath = join(dir, "config.yml");
    await writeFile(configPath, JSON.stringify(config, null, 2));

    let output = "";
    // setpriv's parent-death signal takes the registry down with a test process that is
    // killed before its after() hooks run.
    const proc = spawn("setpriv", ["--pdeathsig", "KILL", "docker-registry", "serve", configPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    const collect = (c: Buffer) => {
      output = (output + c.toString("utf8")).slice(-8192);
    };
    proc.stdout?.on("data", collect);
    proc.stderr?.on("data", collect);
    const spawnError = new Promise<never>((_, reject) =>
      proc.once("error", (e) =>
        reject(
          new Error(
            `cannot start docker-registry through setpriv (apt-get install docker-registry util-linux): ${e.message}`,
          ),
        ),
      ),
    );
    await Promise.race([waitForRegistry(addr, proc, () => output), spawnError]);
    const theIssuer = issuer;
    return {
      mode,
      addr,
      storageDir: join(dir, "storage"),
      ...(mode === "plain" ? {} : { creds }),
      issuerHits: () => theIssuer?.hits ?? 0,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * Pushes an image of an OCI layout to `registryAddr/repoAndTag` with skopeo, keeping digests
 * (and every platform of an index) unchanged. The layout's image is the one named `source`
 * (its ref.name annotation), by default the tag of `repoAndTag`. Asynchronous on purpose: the
 * token issuer skopeo may talk to runs in this process's event loop.
 */
export async function pushLayout(
  layoutDir: string,
  registryAddr: string,
  repoAndTag: string,
  creds?: Creds,
  source?: string,
): Promise<void> {
  const slash = repoAndTag.lastIndexOf("/");
  const colon = repoAndTag.indexOf(":", slash + 1);
  const tag = source ?? (colon >= 0 ? repoAndTag.slice(colon + 1) : "latest");
  const args = [
    "--insecure-policy",
    "copy",
    "--quiet",
    "--all",
    "--preserve-digests",
    "--dest-tls-verify=false",
    ...(creds !== undefined ? ["--dest-creds", `${creds.username}:${creds.password}`] : []),
    `oci:${layoutDir}:${tag}`,
    `docker://${registryAddr}/${repoAndTag}`,
  ];
  try {
    await run("skopeo", args, { timeout: 60_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`skopeo copy to ${registryAddr}/${repoAndTag} failed: ${err.stderr || err.message}`);
  }
}
