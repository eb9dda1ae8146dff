// Signal state the application sets up. Handlers and masks are recorded exactly; delivering
// signals to handlers comes with the signal stage. A signal a program sends itself is queued
// and takes its default action in the run loop's delivery stage (kernel/signals.ts).
import { fail } from "../errno.js";
import { bit, IGNORED_BY_DEFAULT } from "../kernel/signals.js";
import { SIG_DFL, SIG_IGN } from "../kernel/signals-state.js";
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

/**
 * The sa_flags Linux keeps (x86-64's UAPI_SA_FLAGS); it drops the others so programs can
 * probe for support, SA_UNSUPPORTED (0x400) among them.
 */
const SA_KNOWN =
  0x1n /* NOCLDSTOP */ |
  0x2n /* NOCLDWAIT */ |
  0x4n /* SIGINFO */ |
  0x800n /* EXPOSE_TAGBITS */ |
  0x0400_0000n /* RESTORER */ |
  0x0800_0000n /* ONSTACK */ |
  0x1000_0000n /* RESTART */ |
  0x4000_0000n /* NODEFER */ |
  0x8000_0000n; /* RESETHAND */

export const rtSigaction: Handler = (t, a) => {
  const [sig, act, oact] = [int(a[0]), addr(a[1]), addr(a[2])];
  // Linux's order: the set size, then copying the new action in, then the signal number.
  if (a[3] !== SIGSET_SIZE) fail("EINVAL");
  const next = act !== 0 ? t.mm.read(act, 32) : undefined;
  if (sig < 1 || sig > NSIG) fail("EINVAL");
  if (next && (sig === SIGKILL || sig === SIGSTOP)) fail("EINVAL");
  const cur = t.sighand.actions.get(sig);
  if (next) {
    const handler = next.readBigUInt64LE(0);
    t.sighand.actions.set(sig, {
      handler,
      flags: next.readBigUInt64LE(8) & SA_KNOWN,
      restorer: next.readBigUInt64LE(16),
      mask: next.readBigUInt64LE(24) & ~UNBLOCKABLE,
    });
    // A signal that is now ignored is discarded even if it waits blocked, by every thread.
    if (handler === SIG_IGN || (handler === SIG_DFL && IGNORED_BY_DEFAULT.has(sig))) {
      for (const u of t.group.tasks) u.pending &= ~bit(sig);
      t.group.pending &= ~bit(sig);
    }
  }
  // The old action goes out last: the new one stays installed even if this faults.
  if (oact !== 0) {
    const b = Buffer.alloc(32);
    if (cur) {
      b.writeBigUInt64LE(cur.handler, 0);
      b.writeBigUInt64LE(cur.flags, 8);
      b.writeBigUInt64LE(cur.restorer, 16);
      b.writeBigUInt64LE(cur.mask, 24);
    }
    t.mm.write(oact, b);
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
  const old = t.sigmask;
  if (next !== undefined) {
    t.sigmask = next & ~UNBLOCKABLE;
    // raise() blocks everything around its tgkill: what it sent acts once unblocked, in the
    // delivery stage on the way back to the program. A caught one cannot be delivered yet:
    // it is dropped and refused rather than left to wait for ever.
    const ready = (t.pending | t.group.pending) & ~t.sigmask;
    let caught = 0n;
    for (let sig = 1; sig <= NSIG && ready !== 0n; sig++) {
      const h = t.sighand.handler(sig);
      if (ready & bit(sig) && h !== SIG_DFL && h !== SIG_IGN) caught |= bit(sig);
    }
    if (caught !== 0n) {
      t.pending &= ~caught;
      t.group.pending &= ~caught;
      fail("ENOSYS", "delivery to a signal handler");
    }
  }
  // The old mask goes out last: the new one applies even if this faults.
  if (oset !== 0) t.mm.writeU64(oset, old);
  return 0;
};

export const rtSigpending: Handler = (t, a) => {
  const size = a[1] ?? 0n;
  if (size > SIGSET_SIZE) fail("EINVAL");
  // Linux reports what waits and is blocked, in as many bytes as asked for.
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE((t.pending | t.group.pending) & t.sigmask, 0);
  if (size > 0n) t.mm.write(addr(a[0]), b.subarray(0, Number(size)));
  return 0;
};

const SS_ONSTACK = 1;
const SS_DISABLE = 2;
const SS_AUTODISARM = 1 << 31;
const MINSIGSTKSZ = 2048n;

/** Is `sp` inside the alternate stack? Never while it auto-disarms (Linux's on_sig_stack). */
function onAltStack(t: Task, sp: bigint): boolean {
  const s = t.altstack;
  if (s.flags & SS_AUTODISARM) return false;
  return sp > s.sp && sp - s.sp <= s.size;
}

export const sigaltstack: Handler = (t, a) => {
  const [ss, oss] = [addr(a[0]), addr(a[1])];
  const sp = t.cpu.regs.get("rsp");
  const old = t.altstack;
  // Linux reports whether the caller runs on the stack, not the mode it was set with.
  const oldFlags =
    (old.size === 0n ? SS_DISABLE : onAltStack(t, sp) ? SS_ONSTACK : 0) | (old.flags & SS_AUTODISARM);
  if (ss !== 0) {
    const next = t.mm.read(ss, 24);
    if (onAltStack(t, sp)) fail("EPERM");
    const flags = next.readInt32LE(8);
    const mode = flags & ~SS_AUTODISARM;
    if (mode !== 0 && mode !== SS_DISABLE && mode !== SS_ONSTACK) fail("EINVAL");
    if (mode === SS_DISABLE) t.altstack = { sp: 0n, flags, size: 0n };
    else {
      const size = next.readBigUInt64LE(16);
      if (size < MINSIGSTKSZ) fail("ENOMEM");
      t.altstack = { sp: next.readBigUInt64LE(0), flags, size };
    }
  }
  // The old stack goes out only once the new one is accepted, as Linux does.
  if (oss !== 0) {
    const b = Buffer.alloc(24);
    b.writeBigUInt64LE(old.sp, 0);
    b.writeInt32LE(oldFlags, 8);
    b.writeBigUInt64LE(old.size, 16);
    t.mm.write(oss, b);
  }
  return 0;
};

/**
 * A signal sent by the program to itself (raise, abort): to its thread (tgkill, tkill) or its
 * process (kill). Without delivery to handlers yet, the default and ignore dispositions are
 * honoured exactly (queued, then acted on in the delivery stage); a caught signal is refused
 * with ENOSYS (and reported) rather than silently dropped.
 */
function sendToSelf(t: Task, sig: number, toThread: boolean): number {
  if (sig < 0 || sig > NSIG) fail("EINVAL");
  if (sig === 0) return 0; // existence check
  if (sig === 19 || sig === 20 || sig === 21 || sig === 22) fail("ENOSYS", "stopping a task");
  const handler = t.sighand.handler(sig);
  const blocked = (t.sigmask & bit(sig)) !== 0n && sig !== SIGKILL;
  const queue = (): number => {
    if (toThread) t.pending |= bit(sig);
    else t.group.pending |= bit(sig);
    return 0;
  };
  if (blocked) return queue();
  if (sig === SIGKILL || handler === SIG_DFL) return IGNORED_BY_DEFAULT.has(sig) ? 0 : queue();
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
  return sendToSelf(t, int(a[1]), false);
};

export const tgkill: Handler = (t, a) => {
  const [tgid, tid, sig] = [int(a[0]), int(a[1]), int(a[2])];
  if (tgid <= 0 || tid <= 0) fail("EINVAL");
  if (tgid !== t.pid || tid !== t.tid) fail("ESRCH");
  return sendToSelf(t, sig, true);
};

export const tkill: Handler = (t, a) => {
  const [tid, sig] = [int(a[0]), int(a[1])];
  if (tid <= 0) fail("EINVAL");
  if (tid !== t.tid) fail("ESRCH");
  return sendToSelf(t, sig, true);
};
