// Signal state the application sets up. Handlers and masks are recorded exactly; delivering
// signals to handlers comes with the signal stage.
import { fail } from "../errno.js";
import type { Task } from "../kernel/task.js";
import { addr, type Handler, int } from "./types.js";

const SIGKILL = 9;
const SIGSTOP = 19;
const NSIG = 64;
const SIGSET_SIZE = 8n;
/** SIGKILL and SIGSTOP can never be blocked. */
const UNBLOCKABLE = (1n << BigInt(SIGKILL - 1)) | (1n << BigInt(SIGSTOP - 1));

const SIG_BLOCK = 0;
const SIG_UNBLOCK = 1;
const SIG_SETMASK = 2;

export const rtSigaction: Handler = (t, a) => {
  const [sig, act, oact] = [int(a[0]), addr(a[1]), addr(a[2])];
  if (a[3] !== SIGSET_SIZE) fail("EINVAL");
  if (sig < 1 || sig > NSIG) fail("EINVAL");
  if (act !== 0 && (sig === SIGKILL || sig === SIGSTOP)) fail("EINVAL");
  // Read the new action before writing the old one: they may be the same buffer.
  let next: Buffer | undefined;
  if (act !== 0) next = t.mm.read(act, 32);
  if (oact !== 0) {
    const cur = t.sigactions.get(sig);
    const b = Buffer.alloc(32);
    if (cur) {
      b.writeBigUInt64LE(cur.handler, 0);
      b.writeBigUInt64LE(cur.flags, 8);
      b.writeBigUInt64LE(cur.restorer, 16);
      b.writeBigUInt64LE(cur.mask, 24);
    }
    t.mm.write(oact, b);
  }
  if (next) {
    t.sigactions.set(sig, {
      handler: next.readBigUInt64LE(0),
      flags: next.readBigUInt64LE(8),
      restorer: next.readBigUInt64LE(16),
      mask: next.readBigUInt64LE(24) & ~UNBLOCKABLE,
    });
  }
  return 0;
};

export const rtSigprocmask: Handler = (t, a) => {
  const [how, set, oset] = [int(a[0]), addr(a[1]), addr(a[2])];
  if (a[3] !== SIGSET_SIZE) fail("EINVAL");
  let next: bigint | undefined;
  if (set !== 0) {
    const s = t.mm.readU64(set);
    if (how === SIG_BLOCK) next = t.sigmask | s;
    else if (how === SIG_UNBLOCK) next = t.sigmask & ~s;
    else if (how === SIG_SETMASK) next = s;
    else fail("EINVAL");
  }
  if (oset !== 0) t.mm.writeU64(oset, t.sigmask);
  if (next !== undefined) {
    t.sigmask = next & ~UNBLOCKABLE;
    // raise() blocks everything around its tgkill: what it sent acts once unblocked.
    const ready = t.pendingSignals & ~t.sigmask;
    for (let sig = 1; sig <= NSIG && ready !== 0n; sig++) {
      const bit = 1n << BigInt(sig - 1);
      if (!(ready & bit)) continue;
      t.pendingSignals &= ~bit;
      sendToSelf(t, sig);
      if (t.exitStatus) break;
    }
  }
  return 0;
};

const SS_ONSTACK = 1;
const SS_DISABLE = 2;
const SS_AUTODISARM = 1 << 31;
const MINSIGSTKSZ = 2048n;

export const sigaltstack: Handler = (t, a) => {
  const [ss, oss] = [addr(a[0]), addr(a[1])];
  let next: Buffer | undefined;
  if (ss !== 0) next = t.mm.read(ss, 24);
  if (oss !== 0) {
    const b = Buffer.alloc(24);
    b.writeBigUInt64LE(t.altstack.sp, 0);
    b.writeInt32LE(t.altstack.flags, 8);
    b.writeBigUInt64LE(t.altstack.size, 16);
    t.mm.write(oss, b);
  }
  if (next) {
    const flags = next.readInt32LE(8);
    const mode = flags & ~SS_AUTODISARM;
    if (mode !== 0 && mode !== SS_DISABLE && mode !== SS_ONSTACK) fail("EINVAL");
    if (mode === SS_DISABLE) t.altstack = { sp: 0n, flags: SS_DISABLE, size: 0n };
    else {
      const size = next.readBigUInt64LE(16);
      if (size < MINSIGSTKSZ) fail("ENOMEM");
      t.altstack = { sp: next.readBigUInt64LE(0), flags: flags & SS_AUTODISARM, size };
    }
  }
  return 0;
};

const SIG_DFL = 0n;
const SIG_IGN = 1n;
/** Signals whose default action is to do nothing. */
const IGNORED_BY_DEFAULT = new Set([17 /* SIGCHLD */, 18 /* SIGCONT */, 23 /* SIGURG */, 28 /* SIGWINCH */]);

/**
 * A signal sent by the program to itself (raise, abort). Without delivery to handlers yet,
 * the default and ignore dispositions are honoured exactly; a caught signal is refused with
 * ENOSYS (and reported) rather than silently dropped.
 */
function sendToSelf(t: Task, sig: number): number {
  if (sig < 0 || sig > NSIG) fail("EINVAL");
  if (sig === 0) return 0; // existence check
  if (sig === 19 || sig === 20 || sig === 21 || sig === 22) fail("ENOSYS", "stopping a task");
  const handler = t.sigactions.get(sig)?.handler ?? SIG_DFL;
  const blocked = (t.sigmask & (1n << BigInt(sig - 1))) !== 0n && sig !== SIGKILL;
  if (blocked) {
    t.pendingSignals |= 1n << BigInt(sig - 1);
    return 0;
  }
  if (sig === SIGKILL || handler === SIG_DFL) {
    if (!IGNORED_BY_DEFAULT.has(sig)) t.exit({ signal: sig });
    return 0;
  }
  if (handler === SIG_IGN) return 0;
  return fail("ENOSYS", "delivery to a signal handler");
}

function targetsSelf(t: Task, pid: number): boolean {
  // pid 0 and -1 reach the caller's process group / everyone: with one process, that is us.
  return pid === t.pid || pid === 0 || pid === -1 || pid === -t.pid;
}

export const kill: Handler = (t, a) => {
  const pid = int(a[0]);
  if (!targetsSelf(t, pid)) fail("ESRCH");
  return sendToSelf(t, int(a[1]));
};

export const tgkill: Handler = (t, a) => {
  const [tgid, tid, sig] = [int(a[0]), int(a[1]), int(a[2])];
  if (tgid <= 0 || tid <= 0) fail("EINVAL");
  if (tgid !== t.pid || tid !== t.tid) fail("ESRCH");
  return sendToSelf(t, sig);
};

export const tkill: Handler = (t, a) => {
  const [tid, sig] = [int(a[0]), int(a[1])];
  if (tid <= 0) fail("EINVAL");
  if (tid !== t.tid) fail("ESRCH");
  return sendToSelf(t, sig);
};
