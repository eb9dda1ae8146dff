// The rules both ends of the vm isolation apply to the spec's mounts (src/agent/mounts.ts):
// what the guest provides, what it makes, and what is refused with a reason.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkMountSpec, planMount, planMounts } from "../../src/agent/mounts.js";
import { DEFAULT_MOUNTS } from "../../src/image/runtime-spec.js";
import { isMoatError } from "../../src/spec/errors.js";

describe("vm mount plan", () => {
  it("skips what the guest lays out itself and keeps the rest of the default spec in order", () => {
    const plan = planMounts(DEFAULT_MOUNTS);
    assert.deepEqual(
      plan.map((p) => [p.type, p.destination, p.options.join(",")]),
      [
        ["tmpfs", "/dev/shm", "nosuid,noexec,nodev,mode=1777,size=65536k"],
        ["mqueue", "/dev/mqueue", "nosuid,noexec,nodev"],
        ["sysfs", "/sys", "ro,nosuid,noexec,nodev"],
        ["cgroup", "/sys/fs/cgroup", "ro,nosuid,noexec,nodev,relatime"],
        ["tmpfs", "/tmp", "nosuid,nodev,mode=1777"],
      ],
    );
  });

  it("plans the CRI's bind mounts with their host source, read-only-ness and recursion", () => {
    const plan = planMounts([
      {
        destination: "/etc/hosts",
        type: "bind",
        source: "/var/lib/k/hosts",
        options: ["rbind", "rprivate", "ro"],
      },
      { destination: "/data//x/", source: "/srv/data", options: ["bind", "rw", "nosuid"] },
      { destination: "/run/secrets", type: "bind", source: "/s", options: ["ro", "rw"] },
    ]);
    assert.deepEqual(plan, [
      {
        destination: "/etc/hosts",
        type: "bind",
        hostSource: "/var/lib/k/hosts",
        options: ["ro"],
        readonly: true,
        recursive: true,
        copyUp: false,
      },
      {
        destination: "/data/x",
        type: "bind",
        hostSource: "/srv/data",
        options: ["nosuid"],
        readonly: false,
        recursive: false,
        copyUp: false,
      },
      {
        destination: "/run/secrets",
        type: "bind",
        hostSource: "/s",
        options: [],
        readonly: false,
        recursive: false,
        copyUp: false,
      },
    ]);
  });

  it("refuses what it cannot do, naming the mount and what would work", () => {
    const refuses = (m: Parameters<typeof planMount>[0], code: string, re: RegExp) =>
      assert.throws(
        () => planMount(m, 3),
        (e: unknown) =>
          isMoatError(e) && e.code === code && e.message.startsWith("mount 3 (") && re.test(e.message),
      );
    refuses({ destination: "/mnt", type: "nfs", source: "srv:/x" }, "ENOTSUP", /"nfs" is not supported/);
    refuses({ destination: "/mnt", source: "/x" }, "ENOTSUP", /"\(none\)" is not supported/);
    refuses({ destination: "/other-proc", type: "proc" }, "ENOTSUP", /provides proc only at \/proc/);
    refuses({ destination: "/q", type: "mqueue" }, "ENOTSUP", /only at \/dev\/mqueue/);
    refuses({ destination: "relative", type: "tmpfs" }, "EINVAL", /absolute path/);
    refuses({ destination: "/a/..", type: "tmpfs" }, "EINVAL", /container's root/);
    refuses({ destination: "/d", type: "bind", source: "relative/src" }, "EINVAL", /absolute host path/);
    refuses({ destination: "/t", type: "tmpfs", options: ["size=1m,mode=777"] }, "EINVAL", /has a value/);
    refuses({ destination: "/t", type: "tmpfs", options: ["uid=0;x"] }, "EINVAL", /has a value/);
    refuses({ destination: "/d", type: "bind", source: "/s", options: ["size=1m"] }, "EINVAL", /bind mount/);
  });

  it("keeps tmpcopyup for the guest, without handing it to mount(8)", () => {
    const p = planMount({ destination: "/etc", type: "tmpfs", options: ["tmpcopyup", "size=1m"] }, 0)!;
    assert.equal(p.copyUp, true);
    assert.deepEqual(p.options, ["size=1m", "tmpcopyup"]);
    const g = checkMountSpec({ destination: p.destination, type: p.type, source: "", options: p.options });
    assert.equal(g.copyUp, true);
    assert.deepEqual(g.options, ["size=1m"]);
  });

  it("in the guest, takes bind sources only as paths on the volume share", () => {
    const ok = checkMountSpec({ destination: "/d", type: "bind", source: "c1/0", options: ["rbind", "ro"] });
    assert.equal(ok.recursive, true);
    assert.equal(ok.readonly, true);
    for (const source of ["../etc", "c1/../../x", "/abs/0", "c1/0/x", ""]) {
      assert.throws(
        () => checkMountSpec({ destination: "/d", type: "bind", source, options: [] }),
        (e: unknown) => isMoatError(e, "EINVAL") && /volume share/.test(e.message),
        source,
      );
    }
    assert.throws(
      () => checkMountSpec({ destination: "/p", type: "proc", source: "", options: [] }),
      (e: unknown) => isMoatError(e, "ENOTSUP"),
    );
  });
});
