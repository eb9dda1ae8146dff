// Who the application is and what machine it runs on: credentials, uname, randomness.
import { randomFillSync } from "node:crypto";
import { fail } from "../errno.js";
import type { Task } from "../kernel/task.js";
import { type Args, addr, type Handler, int, size, uint } from "./types.js";

export const getuid: Handler = (t) => t.creds.uid;
export const geteuid: Handler = (t) => t.creds.euid;
export const getgid: Handler = (t) => t.creds.gid;
export const getegid: Handler = (t) => t.creds.egid;

/** The kernel release the application sees: a Linux version whose ABI moat follows, marked as moat's. */
export const UTS_RELEASE = "6.1.0-moat";
export const UTS_VERSION = "#1 SMP moat userkernel";

const UTS_FIELD = 65;

export const uname: Handler = (t, a) => {
  const fields = ["Linux", t.kernel.hostname, UTS_RELEASE, UTS_VERSION, "x86_64", t.kernel.domainname];
  const b = Buffer.alloc(UTS_FIELD * fields.length);
  fields.forEach((f, i) => {
    b.write(f.slice(0, UTS_FIELD - 1), i * UTS_FIELD, "utf8");
  });
  t.mm.write(addr(a[0]), b);
  return 0;
};

const GRND_NONBLOCK = 1;
const GRND_RANDOM = 2;
const GRND_INSECURE = 4;

export const getrandom: Handler = (t, a) => {
  const flags = uint(a[2]);
  if (flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) fail("EINVAL");
  if (flags & GRND_RANDOM && flags & GRND_INSECURE) fail("EINVAL");
  const len = Math.min(size(a[1], "EFAULT"), 33554431);
  const buf = addr(a[0]);
  // Fill in slices so a huge request does not allocate a huge temporary buffer.
  for (let done = 0; done < len; ) {
    const n = Math.min(len - done, 65536);
    t.mm.write(buf + done, randomFillSync(Buffer.allocUnsafe(n)));
    done += n;
  }
  return len;
};

export const getgroups: Handler = (t, a) => {
  const n = int(a[0]);
  if (n < 0) fail("EINVAL");
  if (n === 0) return t.groups.length;
  if (n < t.groups.length) fail("EINVAL");
  const b = Buffer.alloc(t.groups.length * 4);
  t.groups.forEach((g, i) => {
    b.writeUInt32LE(g >>> 0, i * 4);
  });
  if (b.length > 0) t.mm.write(addr(a[1]), b);
  return t.groups.length;
};

/** Linux's NGROUPS_MAX. */
const NGROUPS_MAX = 65536;

export const setgroups: Handler = (t, a) => {
  // Linux's order: privilege, then the count, then copying the list in.
  if (t.creds.euid !== 0) fail("EPERM");
  const n = uint(a[0]);
  if (n > NGROUPS_MAX) fail("EINVAL");
  const b = n > 0 ? t.mm.read(addr(a[1]), n * 4) : Buffer.alloc(0);
  const groups: number[] = [];
  for (let i = 0; i < n; i++) {
    const g = b.readUInt32LE(i * 4);
    // (gid_t)-1 is no group: it cannot be mapped to a kernel gid.
    if (g === 0xffff_ffff) fail("EINVAL");
    groups.push(g);
  }
  // Linux keeps the list sorted; getgroups returns it that way.
  t.groups = groups.sort((x, y) => x - y);
  return 0;
};

/** A sandbox's root may switch identities (CAP_SETUID/CAP_SETGID inside its namespace). */
function mayChange(t: Parameters<Handler>[0], ids: number[], current: number[]): void {
  if (t.creds.euid === 0) return;
  for (const id of ids) if (id !== -1 && !current.includes(id)) fail("EPERM");
}

export const setresuid: Handler = (t, a) => {
  const ids = [
    Number(BigInt.asIntN(32, a[0]!)),
    Number(BigInt.asIntN(32, a[1]!)),
    Number(BigInt.asIntN(32, a[2]!)),
  ];
  const c = t.creds;
  mayChange(t, ids, [c.uid, c.euid, c.suid]);
  if (ids[0] !== -1) c.uid = ids[0]!;
  if (ids[1] !== -1) c.euid = ids[1]!;
  if (ids[2] !== -1) c.suid = ids[2]!;
  return 0;
};

export const setresgid: Handler = (t, a) => {
  const ids = [
    Number(BigInt.asIntN(32, a[0]!)),
    Number(BigInt.asIntN(32, a[1]!)),
    Number(BigInt.asIntN(32, a[2]!)),
  ];
  const c = t.creds;
  mayChange(t, ids, [c.gid, c.egid, c.sgid]);
  if (ids[0] !== -1) c.gid = ids[0]!;
  if (ids[1] !== -1) c.egid = ids[1]!;
  if (ids[2] !== -1) c.sgid = ids[2]!;
  return 0;
};

/** Linux's setreuid/setregid: which ids an unprivileged caller may pick for each slot, and when the saved id follows. */
function setReal(t: Task, a: Args, which: "uid" | "gid"): number {
  const [r, e] = [Number(BigInt.asIntN(32, a[0]!)), Number(BigInt.asIntN(32, a[1]!))];
  const c = t.creds;
  const [real, eff, saved] = which === "uid" ? [c.uid, c.euid, c.suid] : [c.gid, c.egid, c.sgid];
  const privileged = c.euid === 0;
  if (r !== -1 && !privileged && r !== real && r !== eff) fail("EPERM");
  if (e !== -1 && !privileged && e !== real && e !== eff && e !== saved) fail("EPERM");
  const newReal = r !== -1 ? r : real;
  const newEff = e !== -1 ? e : eff;
  // The saved id becomes the new effective one when the real id is set, or the effective one
  // is set to something other than the old real id.
  const newSaved = r !== -1 || (e !== -1 && e !== real) ? newEff : saved;
  if (which === "uid") [c.uid, c.euid, c.suid] = [newReal, newEff, newSaved];
  else [c.gid, c.egid, c.sgid] = [newReal, newEff, newSaved];
  return 0;
}

export const setreuid: Handler = (t, a) => setReal(t, a, "uid");
export const setregid: Handler = (t, a) => setReal(t, a, "gid");

export const getresuid: Handler = (t, a) => {
  t.mm.writeU32(addr(a[0]), t.creds.uid);
  t.mm.writeU32(addr(a[1]), t.creds.euid);
  t.mm.writeU32(addr(a[2]), t.creds.suid);
  return 0;
};

export const getresgid: Handler = (t, a) => {
  t.mm.writeU32(addr(a[0]), t.creds.gid);
  t.mm.writeU32(addr(a[1]), t.creds.egid);
  t.mm.writeU32(addr(a[2]), t.creds.sgid);
  return 0;
};

/** The group `pid` names (0: the caller's), or ESRCH. */
function groupOf(t: Task, pid: number) {
  if (pid < 0) fail("ESRCH");
  const g = pid === 0 ? t.group : t.pidns.group(pid);
  return g ?? fail("ESRCH");
}

export const getpgid: Handler = (t, a) => groupOf(t, int(a[0])).pgid;
export const getpgrp: Handler = (t) => t.group.pgid;
export const getsid: Handler = (t, a) => groupOf(t, int(a[0])).sid;

/**
 * setpgid(pid, pgid) with Linux's rules: the caller or a child of it (ESRCH), not after the
 * child's execve (EACCES), in the caller's session (EPERM), never a session leader (EPERM),
 * into its own new group or an existing one of the same session (EPERM).
 */
export const setpgid: Handler = (t, a) => {
  const pid = int(a[0]);
  let pgid = int(a[1]);
  if (pgid < 0) fail("EINVAL");
  const target = pid === 0 ? t.group : t.pidns.group(pid);
  if (!target || (target !== t.group && target.parent !== t.group)) fail("ESRCH");
  if (target !== t.group) {
    if (target.sid !== t.group.sid) fail("EPERM");
    if (target.execed) fail("EACCES");
  }
  if (pgid === 0) pgid = target.tgid;
  if (target.sid === target.tgid) fail("EPERM");
  if (pgid !== target.tgid) {
    if (!t.pidns.groupList().some((g) => g.pgid === pgid && g.sid === t.group.sid)) fail("EPERM");
  }
  target.pgid = pgid;
  return 0;
};

/** A new session and process group led by the caller; EPERM for a process-group leader. */
export const setsid: Handler = (t) => {
  const g = t.group;
  if (t.pidns.groupList().some((p) => p.pgid === g.tgid)) fail("EPERM");
  g.pgid = g.tgid;
  g.sid = g.tgid;
  return g.sid;
};

export const setuid: Handler = (t, a) => {
  const id = Number(BigInt.asIntN(32, a[0]!));
  if (id < 0) fail("EINVAL");
  const c = t.creds;
  if (c.euid === 0) c.uid = c.euid = c.suid = id;
  else if (id === c.uid || id === c.suid) c.euid = id;
  else fail("EPERM");
  return 0;
};

export const setgid: Handler = (t, a) => {
  const id = Number(BigInt.asIntN(32, a[0]!));
  if (id < 0) fail("EINVAL");
  const c = t.creds;
  if (c.euid === 0) c.gid = c.egid = c.sgid = id;
  else if (id === c.gid || id === c.sgid) c.egid = id;
  else fail("EPERM");
  return 0;
};

// Capabilities. The userkernel's one privilege is euid 0 (every check asks for it, as for
// setuid above), so the capability sets it reports are the ones it enforces: all of them for
// euid 0, none otherwise. A capset that would change them is refused: the kernel could not
// honour a dropped capability while the process stays root.
const LINUX_CAPABILITY_VERSION_1 = 0x19980330;
const LINUX_CAPABILITY_VERSION_2 = 0x20071026;
const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
/** CAP_LAST_CAP of the Linux the userkernel follows (6.1: CAP_CHECKPOINT_RESTORE, 40). */
const CAP_LAST_CAP = 40;
const ALL_CAPS = (1n << BigInt(CAP_LAST_CAP + 1)) - 1n;

/** The header's version: how many 32-bit words each set takes (1 or 2); EINVAL (and the preferred version written back) otherwise. */
function capWords(t: Task, header: number, dataGiven: boolean): number | undefined {
  const version = t.mm.readU32(header);
  if (version === LINUX_CAPABILITY_VERSION_1) return 1;
  if (version === LINUX_CAPABILITY_VERSION_2 || version === LINUX_CAPABILITY_VERSION_3) return 2;
  t.mm.writeU32(header, LINUX_CAPABILITY_VERSION_3);
  // A probe (no data pointer) learns the version without an error.
  return dataGiven ? fail("EINVAL") : undefined;
}

function capsOf(target: Task): { effective: bigint; permitted: bigint; inheritable: bigint } {
  const all = target.creds.euid === 0 ? ALL_CAPS : 0n;
  return { effective: all, permitted: all, inheritable: 0n };
}

export const capget: Handler = (t, a) => {
  const header = addr(a[0]);
  const data = addr(a[1]);
  const words = capWords(t, header, data !== 0);
  if (words === undefined) return 0;
  const pid = Number(BigInt.asIntN(32, BigInt(t.mm.readU32(header + 4))));
  if (pid < 0) fail("EINVAL");
  const target = pid === 0 ? t : (t.pidns.task(pid) ?? fail("ESRCH"));
  if (data === 0) return 0;
  const c = capsOf(target);
  const b = Buffer.alloc(12 * words);
  for (let i = 0; i < words; i++) {
    const shift = BigInt(32 * i);
    b.writeUInt32LE(Number((c.effective >> shift) & 0xffff_ffffn), 12 * i);
    b.writeUInt32LE(Number((c.permitted >> shift) & 0xffff_ffffn), 12 * i + 4);
    b.writeUInt32LE(Number((c.inheritable >> shift) & 0xffff_ffffn), 12 * i + 8);
  }
  t.mm.write(data, b);
  return 0;
};

export const capset: Handler = (t, a) => {
  const header = addr(a[0]);
  const words = capWords(t, header, true) ?? 1;
  const pid = Number(BigInt.asIntN(32, BigInt(t.mm.readU32(header + 4))));
  if (pid !== 0 && pid !== t.tid) fail("EPERM");
  const raw = t.mm.read(addr(a[1]), 12 * words);
  const want = { effective: 0n, permitted: 0n, inheritable: 0n };
  for (let i = 0; i < words; i++) {
    const shift = BigInt(32 * i);
    want.effective |= BigInt(raw.readUInt32LE(12 * i)) << shift;
    want.permitted |= BigInt(raw.readUInt32LE(12 * i + 4)) << shift;
    want.inheritable |= BigInt(raw.readUInt32LE(12 * i + 8)) << shift;
  }
  const now = capsOf(t);
  // Linux's rules first: nothing beyond the permitted set, effective within permitted.
  if ((want.permitted & ~now.permitted) !== 0n || (want.effective & ~want.permitted) !== 0n) fail("EPERM");
  if ((want.inheritable & ~now.permitted) !== 0n) fail("EPERM");
  // Version 1 covers the low 32 capabilities only: the others are kept as they are.
  const mask = words === 1 ? 0xffff_ffffn : ALL_CAPS;
  if (
    (want.effective ^ now.effective) & mask ||
    (want.permitted ^ now.permitted) & mask ||
    (want.inheritable ^ now.inheritable) & mask
  )
    fail("EPERM", "the userkernel's privilege is euid 0: it cannot drop single capabilities");
  return 0;
};
