import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  familiarName,
  formatReference,
  parseReference,
  type Reference,
  registryApiHost,
} from "../../src/image/reference.js";
import { isMoatError } from "../../src/spec/errors.js";

const D256 = `sha256:${"0123456789abcdef".repeat(4)}`;
const D512 = `sha512:${"fedcba9876543210".repeat(8)}`;

describe("parseReference: valid references", () => {
  const table: Array<[string, Reference]> = [
    ["busybox", { registry: "docker.io", repository: "library/busybox", tag: "latest" }],
    ["busybox:1.36", { registry: "docker.io", repository: "library/busybox", tag: "1.36" }],
    ["library/busybox", { registry: "docker.io", repository: "library/busybox", tag: "latest" }],
    ["docker.io/busybox", { registry: "docker.io", repository: "library/busybox", tag: "latest" }],
    ["index.docker.io/library/busybox:1", { registry: "docker.io", repository: "library/busybox", tag: "1" }],
    ["user/app", { registry: "docker.io", repository: "user/app", tag: "latest" }],
    ["localhost/app", { registry: "localhost", repository: "app", tag: "latest" }],
    [
      "localhost:5000/team/app:v1.2-rc_3",
      { registry: "localhost:5000", repository: "team/app", tag: "v1.2-rc_3" },
    ],
    [`127.0.0.1:5000/app@${D256}`, { registry: "127.0.0.1:5000", repository: "app", digest: D256 }],
    [
      `ghcr.io/owner/app:tag@${D256}`,
      { registry: "ghcr.io", repository: "owner/app", tag: "tag", digest: D256 },
    ],
    ["[::1]:5000/app", { registry: "[::1]:5000", repository: "app", tag: "latest" }],
    ["quay.io/a/b/c", { registry: "quay.io", repository: "a/b/c", tag: "latest" }],
    [
      "my-registry.Example.com/a__b/c.d/e--f:X_y",
      { registry: "my-registry.Example.com", repository: "a__b/c.d/e--f", tag: "X_y" },
    ],
    [`busybox@${D512}`, { registry: "docker.io", repository: "library/busybox", digest: D512 }],
    // Docker reads a lone "host:port" as a name with a tag.
    ["localhost:5000", { registry: "docker.io", repository: "library/localhost", tag: "5000" }],
    [`a:${"t".repeat(128)}`, { registry: "docker.io", repository: "library/a", tag: "t".repeat(128) }],
  ];
  for (const [input, expected] of table) {
    it(`parses ${JSON.stringify(input)}`, () => {
      assert.deepEqual(parseReference(input), expected);
    });
  }
});

describe("parseReference: invalid references", () => {
  const table: Array<[string, RegExp]> = [
    ["", /empty/],
    ["Busybox", /lowercase/],
    ["docker.io/Library/busybox", /lowercase/],
    ["busybox:", /tag/],
    ["busybox:-tag", /tag/],
    [`busybox:${"a".repeat(129)}`, /tag/],
    ["busybox@sha256:abc", /64 lowercase hex/],
    [`busybox@sha256:${"A".repeat(64)}`, /64 lowercase hex/],
    [`busybox@md5:${"a".repeat(32)}`, /not supported/],
    ["busybox@", /digest/],
    ["registry.io/", /missing/],
    ["/busybox", /repository/],
    ["a//b", /repository/],
    ["a/b/", /repository/],
    ["-a/b", /repository/],
    ["a_/b", /repository/],
    ["a___b", /repository/],
    ["bad_host.io/app", /registry/],
    ["localhost:abc/app", /registry/],
    ["busy box", /white space/],
    [" busybox", /white space/],
    ["0123456789abcdef".repeat(4), /image ID/],
    [`a/${"b".repeat(254)}`, /longer than 255/],
    [":tag", /missing/],
  ];
  for (const [input, why] of table) {
    it(`rejects ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}...` : input)}`, () => {
      assert.throws(
        () => parseReference(input),
        (e: unknown) => {
          assert.ok(isMoatError(e, "EINVAL"), `expected MoatError EINVAL, got ${String(e)}`);
          assert.match(e.message, why);
          assert.ok(e.message.includes(JSON.stringify(input)), "the message quotes the input");
          assert.match(e.message, /valid examples: "busybox"/);
          return true;
        },
      );
    });
  }
});

describe("formatting", () => {
  it("formatReference gives the canonical full name", () => {
    assert.equal(formatReference(parseReference("busybox")), "docker.io/library/busybox:latest");
    assert.equal(formatReference(parseReference(`x/y@${D256}`)), `docker.io/x/y@${D256}`);
    assert.equal(formatReference(parseReference("localhost:5000/a:b")), "localhost:5000/a:b");
  });

  it("familiarName gives the short form docker shows", () => {
    const table: Array<[string, string]> = [
      ["docker.io/library/busybox:latest", "busybox:latest"],
      ["busybox:1.36", "busybox:1.36"],
      ["index.docker.io/user/app:v1", "user/app:v1"],
      ["docker.io/library/a/b:t", "library/a/b:t"],
      [`busybox@${D256}`, `busybox@${D256}`],
      ["localhost:5000/app:1", "localhost:5000/app:1"],
      ["quay.io/x/y:2", "quay.io/x/y:2"],
      ["docker.io/a.b/c:1", "docker.io/a.b/c:1"],
    ];
    for (const [input, familiar] of table) assert.equal(familiarName(parseReference(input)), familiar, input);
  });

  it("registryApiHost maps docker.io to its API host and leaves others alone", () => {
    assert.equal(registryApiHost("docker.io"), "registry-1.docker.io");
    assert.equal(registryApiHost("localhost:5000"), "localhost:5000");
    assert.equal(registryApiHost("ghcr.io"), "ghcr.io");
  });
});

// Generators for references that are already in canonical form.
const pathComponent = fc
  .stringMatching(/^[a-z0-9]{1,6}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,6}){0,2}$/)
  .filter((s) => /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/.test(s));
const label = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?$/);
const domain = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.option(fc.integer({ min: 1, max: 65535 })))
  .map(([labels, port]) => `${labels.join(".")}${port === null ? "" : `:${port}`}`)
  .filter((d) => (d.includes(".") || d.includes(":") || d === "localhost") && d !== "index.docker.io");
const registry = fc.oneof(
  fc.constant("docker.io"),
  fc.constant("localhost"),
  fc.constant("[::1]:5000"),
  domain,
);
const tag = fc.stringMatching(/^\w[\w.-]{0,20}$/);
const digest = fc.oneof(
  fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`),
  fc.stringMatching(/^[0-9a-f]{128}$/).map((h) => `sha512:${h}`),
);
const canonical: fc.Arbitrary<Reference> = fc
  .record({
    registry,
    components: fc.array(pathComponent, { minLength: 1, maxLength: 4 }),
    tag: fc.option(tag),
    digest: fc.option(digest),
  })
  .filter((r) => r.tag !== null || r.digest !== null)
  .map((r) => {
    let repository = r.components.join("/");
    if (r.registry === "docker.io" && r.components.length === 1) repository = `library/${repository}`;
    const ref: Reference = { registry: r.registry, repository };
    if (r.tag !== null) ref.tag = r.tag;
    if (r.digest !== null) ref.digest = r.digest;
    return ref;
  });

describe("properties", () => {
  it("canonical references round-trip through formatReference and parseReference", () => {
    fc.assert(
      fc.property(canonical, (ref) => {
        assert.deepEqual(parseReference(formatReference(ref)), ref);
      }),
      { numRuns: 2000 },
    );
  });

  it("familiar names parse back to the same reference", () => {
    fc.assert(
      fc.property(canonical, (ref) => {
        assert.deepEqual(parseReference(familiarName(ref)), ref);
      }),
      { numRuns: 2000 },
    );
  });

  const nearlyValid = fc.string({
    unit: fc.constantFrom(...("abAZ09:/@.-_ [" + "]")),
    maxLength: 40,
  });
  it("any string either parses or throws MoatError EINVAL", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), nearlyValid), (text) => {
        try {
          const ref = parseReference(text);
          // Whatever parses must also be printable and re-parse to itself.
          assert.deepEqual(parseReference(formatReference(ref)), ref);
        } catch (e) {
          if (!isMoatError(e, "EINVAL")) throw e;
        }
      }),
      { numRuns: 5000 },
    );
  });
});
