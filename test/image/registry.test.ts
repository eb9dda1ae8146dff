import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { isRetriable, loadDockerCredentials, RegistryClient } from "../../src/image/registry.js";
import { parseWwwAuthenticate } from "../../src/image/registry-auth.js";
import { isMoatError } from "../../src/spec/errors.js";
import { MediaType } from "../../src/spec/image.js";
import { makeLayer, sha256, type WrittenLayout, writeOciLayout } from "../helpers/layout.js";
import { pushLayout, selfSignedCert, startRegistry, type TestRegistry } from "../helpers/registry.js";

// The machine's own docker config must not leak credentials into these tests.
let scratch = "";
const savedDockerConfig = process.env.DOCKER_CONFIG;
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "moat-registry-test-"));
  await mkdir(join(scratch, "empty-docker-config"));
  process.env.DOCKER_CONFIG = join(scratch, "empty-docker-config");
});
after(async () => {
  if (savedDockerConfig === undefined) delete process.env.DOCKER_CONFIG;
  else process.env.DOCKER_CONFIG = savedDockerConfig;
  await rm(scratch, { recursive: true, force: true });
});

async function buildLayouts(dir: string): Promise<{ single: WrittenLayout; multi: WrittenLayout }> {
  const layers = [
    await makeLayer({ "etc/hostname": "moat\n", "bin/hello": "#!/bin/sh\necho hello\n" }),
    await makeLayer({ "data/big.bin": Buffer.alloc(300_000, 7) }),
  ];
  const config = { config: { Cmd: ["/bin/hello"], Env: ["PATH=/bin"] } };
  const single = await writeOciLayout(join(dir, "single"), { layers, config, tag: "v1" });
  const multi = await writeOciLayout(join(dir, "multi"), { layers, config, tag: "v2", index: true });
  return { single, multi };
}

async function hashStream(stream: Readable): Promise<{ digest: string; size: number }> {
  const h = createHash("sha256");
  let size = 0;
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${h.digest("hex")}`, size };
}

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<unknown> {
  let caught: unknown;
  await assert.rejects(p, (e: unknown) => {
    caught = e;
    assert.ok(isMoatError(e), `expected a MoatError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
  return caught;
}

describe("plain registry", () => {
  let reg: TestRegistry;
  let single: WrittenLayout;
  let multi: WrittenLayout;
  let client: RegistryClient;

  before(async () => {
    reg = await startRegistry("plain");
    ({ single, multi } = await buildLayouts(join(scratch, "plain")));
    await pushLayout(single.dir, reg.addr, "test/single:v1");
    await pushLayout(multi.dir, reg.addr, "test/multi:v2");
    client = new RegistryClient(reg.addr);
  });
  after(async () => {
    await reg?.stop();
  });

  it("pings the v2 API", async () => {
    await client.ping();
  });

  it("gets an image manifest by tag with its media type and digest", async () => {
    const m = await client.getManifest("test/single", "v1");
    assert.equal(m.mediaType, MediaType.ociManifest);
    assert.equal(m.digest, single.manifest.digest);
    assert.deepEqual(m.bytes, single.manifestBytes);
  });

  it("gets an image index by tag, and its platform manifests by digest", async () => {
    const index = await client.getManifest("test/multi", "v2");
    assert.equal(index.mediaType, MediaType.ociIndex);
    assert.equal(index.digest, multi.top.digest);
    const parsed = JSON.parse(index.bytes.toString("utf8")) as {
      manifests: Array<{ digest: string; platform: { architecture: string } }>;
    };
    assert.deepEqual(
      parsed.manifests.map((d) => d.platform.architecture),
      ["amd64", "arm64"],
    );
    for (const d of parsed.manifests) {
      const m = await client.getManifest("test/multi", d.digest);
      assert.equal(m.mediaType, MediaType.ociManifest);
      assert.equal(m.digest, d.digest);
      assert.equal(sha256(m.bytes), d.digest);
    }
  });

  it("streams blobs whose content hashes to the descriptor digest", async () => {
    for (const d of [single.config, ...single.layers]) {
      const { stream, size } = await client.openBlob("test/single", d.digest, d.size);
      assert.equal(size, d.size);
      assert.deepEqual(await hashStream(stream), { digest: d.digest, size: d.size });
    }
  });

  it("learns the scheme once: a second client on the same registry works the same", async () => {
    const other = new RegistryClient(reg.addr.replace("127.0.0.1", "localhost"));
    const m = await other.getManifest("test/single", single.manifest.digest);
    assert.equal(m.digest, single.manifest.digest);
  });

  it("reports an unknown image, tag or digest as ENOENT", async () => {
    await rejectsWith(
      client.getManifest("test/nothing", "v1"),
      "ENOENT",
      /test\/nothing:v1 not found.*check the name and tag/,
    );
    await rejectsWith(client.getManifest("test/single", "v9"), "ENOENT", /test\/single:v9 not found/);
    await rejectsWith(
      client.getManifest("test/single", `sha256:${"0".repeat(64)}`),
      "ENOENT",
      /test\/single@sha256:0+ not found/,
    );
  });

  it("reports an unknown blob as ENOENT", async () => {
    await rejectsWith(
      client.openBlob("test/single", `sha256:${"1".repeat(64)}`),
      "ENOENT",
      /blob sha256:1+ .*not found/,
    );
  });

  it("refuses repository names and references that could escape the API path", async () => {
    await rejectsWith(client.getManifest("../etc", "v1"), "EINVAL", /invalid repository/);
    await rejectsWith(client.getManifest("test/single", "../../x"), "EINVAL", /invalid tag/);
    await rejectsWith(client.openBlob("test/single", "sha256:../../x"), "EINVAL", /digest/);
  });

  it("reports a stopped registry as ECONNREFUSED naming host and port", async () => {
    const gone = await startRegistry("plain");
    await gone.stop();
    const c = new RegistryClient(gone.addr);
    await rejectsWith(
      c.getManifest("test/single", "v1"),
      "ECONNREFUSED",
      new RegExp(`${gone.addr.replace(/\./g, "\\.")} \\(connection refused\\): check the registry address`),
    );
  });
});

describe("htpasswd registry", () => {
  let reg: TestRegistry;
  let single: WrittenLayout;

  before(async () => {
    reg = await startRegistry("htpasswd");
    ({ single } = await buildLayouts(join(scratch, "htpasswd")));
    await pushLayout(single.dir, reg.addr, "test/single:v1", reg.creds);
  });
  after(async () => {
    await reg?.stop();
  });

  it("pulls with the right credentials", async () => {
    const client = new RegistryClient(reg.addr, { credentials: reg.creds! });
    await client.ping();
    const m = await client.getManifest("test/single", "v1");
    assert.equal(m.digest, single.manifest.digest);
    const layer = single.layers[1]!;
    const { stream } = await client.openBlob("test/single", layer.digest, layer.size);
    assert.equal((await hashStream(stream)).digest, layer.digest);
  });

  it("fails with EAUTH for wrong credentials", async () => {
    const client = new RegistryClient(reg.addr, { credentials: { username: "moat", password: "wrong" } });
    await rejectsWith(
      client.getManifest("test/single", "v1"),
      "EAUTH",
      /refused credentials for 127\.0\.0\.1:\d+\/test\/single .*--creds user:password or a docker config/,
    );
    await rejectsWith(client.ping(), "EAUTH", /refused credentials/);
  });

  it("fails with EAUTH without credentials", async () => {
    const client = new RegistryClient(reg.addr);
    await client.ping(); // reachable; the login is only needed for content
    await rejectsWith(client.getManifest("test/single", "v1"), "EAUTH", /requires credentials.*--creds/);
  });

  it("uses credentials from the docker config file", async () => {
    const dir = join(scratch, "docker-config-htpasswd");
    await mkdir(dir, { recursive: true });
    const auth = Buffer.from(`${reg.creds!.username}:${reg.creds!.password}`).toString("base64");
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({ auths: { [`http://${reg.addr}`]: { auth } } }),
    );
    const saved = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = dir;
    try {
      const m = await new RegistryClient(reg.addr).getManifest("test/single", "v1");
      assert.equal(m.digest, single.manifest.digest);
    } finally {
      process.env.DOCKER_CONFIG = saved;
    }
  });
});

describe("token registry", () => {
  let reg: TestRegistry;
  let single: WrittenLayout;

  before(async () => {
    reg = await startRegistry("token");
    ({ single } = await buildLayouts(join(scratch, "token")));
    await pushLayout(single.dir, reg.addr, "test/single:v1", reg.creds);
    await pushLayout(single.dir, reg.addr, "public/single:v1", reg.creds);
  });
  after(async () => {
    await reg?.stop();
  });

  it("pulls a public repository with an anonymous token", async () => {
    const client = new RegistryClient(reg.addr);
    const before = reg.issuerHits();
    const m = await client.getManifest("public/single", "v1");
    assert.equal(m.digest, single.manifest.digest);
    const { stream } = await client.openBlob("public/single", single.config.digest, single.config.size);
    assert.equal((await hashStream(stream)).digest, single.config.digest);
    assert.equal(reg.issuerHits() - before, 1);
  });

  it("denies an anonymous pull with EAUTH", async () => {
    const client = new RegistryClient(reg.addr);
    await rejectsWith(
      client.getManifest("test/single", "v1"),
      "EAUTH",
      /requires credentials for .*test\/single/,
    );
  });

  it("fails with EAUTH when the token server refuses the credentials", async () => {
    const client = new RegistryClient(reg.addr, { credentials: { username: "moat", password: "nope" } });
    await rejectsWith(client.getManifest("test/single", "v1"), "EAUTH", /refused credentials/);
  });

  it("pulls with credentials and reuses one token across calls", async () => {
    const client = new RegistryClient(reg.addr, { credentials: reg.creds! });
    const before = reg.issuerHits();
    const byTag = await client.getManifest("test/single", "v1");
    const byDigest = await client.getManifest("test/single", byTag.digest);
    assert.deepEqual(byDigest.bytes, byTag.bytes);
    for (const d of [single.config, ...single.layers]) {
      const { stream } = await client.openBlob("test/single", d.digest, d.size);
      assert.equal((await hashStream(stream)).digest, d.digest);
    }
    assert.equal(reg.issuerHits() - before, 1);
  });

  it("shares one token request among parallel downloads", async () => {
    const client = new RegistryClient(reg.addr, { credentials: reg.creds! });
    const before = reg.issuerHits();
    const digests = await Promise.all(
      [single.config, ...single.layers, single.config].map(async (d) => {
        const { stream } = await client.openBlob("test/single", d.digest, d.size);
        return (await hashStream(stream)).digest;
      }),
    );
    assert.deepEqual(
      digests,
      [single.config, ...single.layers, single.config].map((d) => d.digest),
    );
    assert.equal(reg.issuerHits() - before, 1);
  });
});

// Registries that misbehave in ways docker-registry never does: small Node servers that
// speak just enough of the API to exercise the client's defences.
async function listen(server: Server, host = "127.0.0.1"): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const a = server.address();
  if (a === null || typeof a === "string") throw new Error("no address");
  return `${host}:${a.port}`;
}

async function withServer<T>(
  handler: RequestListener,
  fn: (addr: string) => Promise<T>,
  host?: string,
): Promise<T> {
  const server = createHttpServer(handler);
  const addr = await listen(server, host);
  try {
    return await fn(addr);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const MANIFEST = Buffer.from(
  JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, layers: [] }),
);

describe("misbehaving servers", () => {
  it("surfaces a blob body that ends early (connection closed) as a retriable stream error", async () => {
    await withServer(
      (req, res) => {
        if (req.url === "/v2/") return res.end("{}");
        res.writeHead(200, { "content-length": "1000" });
        res.write(Buffer.alloc(100, 1));
        setTimeout(() => res.socket?.destroy(), 50);
      },
      async (addr) => {
        const { stream, size } = await new RegistryClient(addr).openBlob("x/y", `sha256:${"a".repeat(64)}`);
        assert.equal(size, 1000);
        const err = await rejectsWith(hashStream(stream), "EIO", /connection to registry .* failed/);
        assert.ok(isRetriable(err));
      },
    );
  });

  it("surfaces a chunked body that stops short of the expected size as a stream error", async () => {
    await withServer(
      (_req, res) => {
        res.write(Buffer.alloc(100, 1)); // chunked, no length: only the descriptor knows the size
        res.end();
      },
      async (addr) => {
        const { stream, size } = await new RegistryClient(addr).openBlob(
          "x/y",
          `sha256:${"a".repeat(64)}`,
          1000,
        );
        assert.equal(size, 1000);
        const err = await rejectsWith(hashStream(stream), "EIO", /ended after 100 of 1000 bytes/);
        assert.ok(isRetriable(err));
      },
    );
  });

  it("refuses more blob bytes than the descriptor promises", async () => {
    await withServer(
      (_req, res) => {
        res.write(Buffer.alloc(3000, 1));
        res.end();
      },
      async (addr) => {
        const { stream } = await new RegistryClient(addr).openBlob("x/y", `sha256:${"a".repeat(64)}`, 1000);
        await rejectsWith(hashStream(stream), "EDIGEST", /more than the 1000 bytes/);
      },
    );
  });

  it("rejects a manifest whose bytes do not hash to the requested digest", async () => {
    await withServer(
      (_req, res) => {
        res.writeHead(200, { "content-type": MediaType.ociManifest });
        res.end(MANIFEST);
      },
      async (addr) => {
        const client = new RegistryClient(addr);
        const wanted = `sha256:${"b".repeat(64)}`;
        await rejectsWith(client.getManifest("x/y", wanted), "EDIGEST", /whose digest is sha256:/);
        const right = await client.getManifest("x/y", sha256(MANIFEST));
        assert.equal(right.digest, sha256(MANIFEST));
        assert.equal(right.mediaType, MediaType.ociManifest);
      },
    );
  });

  it("rejects a manifest whose announced Docker-Content-Digest is wrong", async () => {
    await withServer(
      (_req, res) => {
        res.writeHead(200, { "docker-content-digest": `sha256:${"c".repeat(64)}` });
        res.end(MANIFEST);
      },
      async (addr) => {
        await rejectsWith(new RegistryClient(addr).getManifest("x/y", "v1"), "EDIGEST", /announced digest/);
      },
    );
  });

  it("takes the media type from Content-Type when the body has none", async () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    await withServer(
      (_req, res) => {
        res.writeHead(200, { "content-type": `${MediaType.dockerManifestList}; charset=utf-8` });
        res.end(body);
      },
      async (addr) => {
        const m = await new RegistryClient(addr).getManifest("x/y", "v1");
        assert.equal(m.mediaType, MediaType.dockerManifestList);
        assert.equal(m.digest, sha256(body));
      },
    );
  });

  it("refuses manifests larger than 4 MiB, announced or not", async () => {
    const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    for (const announce of [true, false]) {
      await withServer(
        (_req, res) => {
          if (announce) res.writeHead(200, { "content-length": String(huge.length) });
          res.end(huge);
        },
        async (addr) => {
          await rejectsWith(new RegistryClient(addr).getManifest("x/y", "v1"), "EPROTO", /larger than 4 MiB/);
        },
      );
    }
  });

  it("reports 503 and 429 as retriable EIO", async () => {
    await withServer(
      (req, res) => {
        if (req.url?.includes("manifests")) {
          res.writeHead(503, { "content-type": "application/json" });
          res.end(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "maintenance" }] }));
        } else {
          res.writeHead(429, { "retry-after": "7" });
          res.end();
        }
      },
      async (addr) => {
        const client = new RegistryClient(addr);
        const e1 = await rejectsWith(
          client.getManifest("x/y", "v1"),
          "EIO",
          /HTTP 503 \(UNAVAILABLE: maintenance\).*retry later/,
        );
        assert.ok(isRetriable(e1));
        const e2 = await rejectsWith(
          client.openBlob("x/y", `sha256:${"a".repeat(64)}`),
          "EIO",
          /rate-limiting.*wait 7 s/,
        );
        assert.ok(isRetriable(e2));
      },
    );
  });

  it("times out a registry that never answers, and a blob body that stalls", async () => {
    await withServer(
      (req, res) => {
        if (req.url?.includes("blobs")) {
          res.writeHead(200, { "content-length": "100" });
          res.write(Buffer.alloc(10));
        }
        // otherwise: never answer
      },
      async (addr) => {
        const client = new RegistryClient(addr, { timeoutMs: 300 });
        const { stream } = await client.openBlob("x/y", `sha256:${"a".repeat(64)}`);
        const e1 = await rejectsWith(hashStream(stream), "ETIMEDOUT", /did not answer within 0\.3 s/);
        assert.ok(isRetriable(e1));
        const e2 = await rejectsWith(client.getManifest("x/y", "v1"), "ETIMEDOUT", /did not answer/);
        assert.ok(isRetriable(e2));
      },
    );
  });

  it("rejects a loopback HTTPS registry with an untrusted certificate instead of falling back to HTTP", async () => {
    const dir = join(scratch, "tls");
    await mkdir(dir, { recursive: true });
    await selfSignedCert(join(dir, "key.pem"), join(dir, "cert.pem"), "127.0.0.1");
    let requests = 0;
    const server = createHttpsServer(
      { key: await readFile(join(dir, "key.pem")), cert: await readFile(join(dir, "cert.pem")) },
      (_req, res) => {
        requests++;
        res.end("{}");
      },
    );
    const addr = await listen(server);
    try {
      await rejectsWith(
        new RegistryClient(addr).ping(),
        "EPROTO",
        /TLS certificate .* was rejected.*NODE_EXTRA_CA_CERTS/,
      );
      assert.equal(requests, 0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("uses plain HTTP with a non-loopback registry only when told --insecure", async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a !== undefined && a.family === "IPv4" && !a.internal);
    assert.ok(external, "this test needs a non-loopback IPv4 address on the machine");
    await withServer(
      (_req, res) => {
        res.writeHead(200, { "content-type": MediaType.ociManifest });
        res.end(MANIFEST);
      },
      async (addr) => {
        await rejectsWith(
          new RegistryClient(addr).getManifest("x/y", "v1"),
          "EPROTO",
          /does not answer HTTPS.*--insecure/,
        );
        const m = await new RegistryClient(addr, { insecure: true }).getManifest("x/y", "v1");
        assert.equal(m.digest, sha256(MANIFEST));
      },
      external.address,
    );
  });

  it("follows a blob redirect to another origin without sending it the credentials", async () => {
    const blob = Buffer.from("redirected blob content");
    let storageSawAuthorization: string | undefined = "not reached";
    await withServer(
      (req, res) => {
        storageSawAuthorization = req.headers.authorization;
        res.end(blob);
      },
      (storage) =>
        withServer(
          (req, res) => {
            if (req.headers.authorization === undefined) {
              res.writeHead(401, { "www-authenticate": 'Basic realm="test"' });
              return res.end();
            }
            res.writeHead(307, { location: `http://${storage}/storage/blob?signature=abc` });
            res.end();
          },
          async (addr) => {
            const client = new RegistryClient(addr, { credentials: { username: "u", password: "p" } });
            const { stream } = await client.openBlob("x/y", sha256(blob), blob.length);
            assert.deepEqual(await hashStream(stream), { digest: sha256(blob), size: blob.length });
            assert.equal(storageSawAuthorization, undefined);
          },
        ),
    );
  });

  it("accepts host names with ports and rejects anything else as a registry name", () => {
    for (const ok of ["registry.example.com:443", "localhost", "[::1]:5000", "docker.io", "10.0.0.1:5000"]) {
      assert.equal(new RegistryClient(ok).registry, ok);
    }
    for (const bad of ["user@host", "host/path", "host:port", "", "ho st", "host?x=1", "http://host"]) {
      assert.throws(
        () => new RegistryClient(bad),
        (e: unknown) => isMoatError(e, "EINVAL") && /invalid registry/.test(e.message),
        bad,
      );
    }
  });
});

describe("auth helpers", () => {
  it("parses WWW-Authenticate with quoted commas, several params and several challenges", () => {
    assert.deepEqual(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.example.com/token?a=1,b=2",service="registry.example.com",scope="repository:a/b:pull,push",error="insufficient_scope"',
      ),
      [
        {
          scheme: "bearer",
          params: {
            realm: "https://auth.example.com/token?a=1,b=2",
            service: "registry.example.com",
            scope: "repository:a/b:pull,push",
            error: "insufficient_scope",
          },
        },
      ],
    );
    assert.deepEqual(
      parseWwwAuthenticate(
        'Basic realm="a \\"quoted\\" realm", charset=UTF-8, Bearer realm=x , service = "y"',
      ),
      [
        { scheme: "basic", params: { realm: 'a "quoted" realm', charset: "UTF-8" } },
        { scheme: "bearer", params: { realm: "x", service: "y" } },
      ],
    );
    assert.deepEqual(parseWwwAuthenticate(""), []);
    assert.deepEqual(parseWwwAuthenticate('Bearer realm="unterminated'), [
      { scheme: "bearer", params: { realm: "unterminated" } },
    ]);
  });

  it("reads credentials from a docker config, matching the names docker uses for a registry", async () => {
    const dir = join(scratch, "docker-config-unit");
    await mkdir(dir, { recursive: true });
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({
        auths: {
          "https://index.docker.io/v1/": { auth: b64("hubuser:hub:pass") },
          "localhost:5000": { auth: b64("local:pw") },
          "ghcr.io": { username: "gh", password: "tok" },
          "broken.example": { auth: b64("nocolon") },
        },
      }),
    );
    const env = { DOCKER_CONFIG: dir };
    assert.deepEqual(loadDockerCredentials("docker.io", env), { username: "hubuser", password: "hub:pass" });
    assert.deepEqual(loadDockerCredentials("localhost:5000", env), { username: "local", password: "pw" });
    assert.deepEqual(loadDockerCredentials("ghcr.io", env), { username: "gh", password: "tok" });
    assert.equal(loadDockerCredentials("broken.example", env), undefined);
    assert.equal(loadDockerCredentials("quay.io", env), undefined);
    assert.equal(loadDockerCredentials("docker.io", { DOCKER_CONFIG: join(dir, "missing") }), undefined);
  });
});
