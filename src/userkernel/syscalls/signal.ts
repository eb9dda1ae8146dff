// The signal system calls: dispositions, masks, the alternate stack, sending (kill, tgkill,
// tkill, rt_sigqueueinfo, rt_tgsigqueueinfo) and rt_sigreturn. Sending, the pending sets and
// delivery to handlers are the kernel's (kernel/signals.ts, kernel/sigframe.ts).
import { fail, KernelError } from "../errno.js";
import {
  altStackFlags,
  onAltStack,
  restoreFrame,
  SS_AUTODISARM,
  SS_DISABLE,
  SS_ONSTACK,
} from "../kernel/sigframe.js";
import {
  bit,
  flushGroup,
  forceFault,
  IGNORED_BY_DEFAULT,
  makeInfo,
  NSIG,
  SI_KERNEL,
  SI_TKILL,
  SI_USER,
  SIGCONT,
  SIGSEGV,
  senderInfo,
  sendSignal,
  UNBLOCKABLE,
} from "../kernel/signals.js";
import { SIG_DFL, SIG_IGN } from "../kernel/signals-state.js";
import type { Task } from "../kernel/task.js";
import type { ThreadGroup } from "../kernel/thread-group.js";
import { addr, type Handler, int } from "./types.js";

const SIGKILL = 9;
const SIGSTOP = 19;
const SIGSET_SIZE = 8n;

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
    if (handler === SIG_IGN || (handler === SIG_DFL && IGNORED_BY_DEFAULT.has(sig)))
      flushGroup(t.group, bit(sig));
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
  // What the new mask unblocks is delivered on the way back to the program.
  if (next !== undefined) t.sigmask = next & ~UNBLOCKABLE;
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

const MINSIGSTKSZ = 2048n;

export const sigaltstack: Handler = (t, a) => {
  const [ss, oss] = [addr(a[0]), addr(a[1])];
  const sp = t.cpu.regs.get("rsp");
  const old = t.altstack;
  // Linux reports whether the caller runs on the stack, not the mode it was set with.
  const oldFlags = altStackFlags(old, sp) | (old.flags & SS_AUTODISARM);
  if (ss !== 0) {
    const next = t.mm.read(ss, 24);
    if (onAltStack(old, sp)) fail("EPERM");
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

/** May `t` send a signal to `g` (Linux's check_kill_permission)? */
function mayKill(t: Task, g: ThreadGroup<Task>, sig: number): boolean {
  const target = g.leader;
  if (!target) return false;
  const c = t.creds;
  if (c.euid === 0) return true;
  const tc = target.creds;
  if (c.euid === tc.uid || c.euid === tc.suid || c.uid === tc.uid || c.uid === tc.suid) return true;
  // SIGCONT may always be sent within one session (job control).
  return sig === SIGCONT && g.sid === t.group.sid;
}

function checkSig(sig: number): void {
  if (sig < 0 || sig > NSIG) fail("EINVAL");
}

/** Send to each group: ESRCH if none, EPERM if none allowed, else 0 (Linux's kill_pgrp/-1). */
function sendToGroups(t: Task, groups: ThreadGroup<Task>[], sig: number, info: () => Buffer): number {
  if (groups.length === 0) fail("ESRCH");
  let sent = 0;
  for (const g of groups) {
    if (!mayKill(t, g, sig)) continue;
    sent++;
    sendSignal({ group: g }, sig, info());
  }
  if (sent === 0) fail("EPERM");
  return 0;
}

function liveGroups(t: Task): ThreadGroup<Task>[] {
  return t.pidns.groupList().filter((g) => !g.exitStatus);
}

/** kill(2): a process (pid > 0), the caller's process group (0), every process (-1), a group (< -1). */
export const kill: Handler = (t, a) => {
  const [pid, sig] = [int(a[0]), int(a[1])];
  checkSig(sig);
  const info = (): Buffer => senderInfo(t, sig, SI_USER);
  if (pid > 0) {
    const g = t.pidns.group(pid);
    if (!g) return fail("ESRCH");
    // A zombie (or a process on its way out) still has its pid: the signal goes nowhere, as on Linux.
    if (g.exitStatus) return 0;
    return sendToGroups(t, [g], sig, info);
  }
  if (pid === -1) {
    // Everyone but init and the caller's own process; ESRCH if that is nobody.
    const all = liveGroups(t).filter((g) => g.tgid !== 1 && g !== t.group);
    return sendToGroups(t, all, sig, info);
  }
  if (pid === -2147483648) fail("ESRCH");
  const pgid = pid === 0 ? t.group.pgid : -pid;
  return sendToGroups(
    t,
    liveGroups(t).filter((g) => g.pgid === pgid),
    sig,
    info,
  );
};

function threadOf(t: Task, tgid: number, tid: number): Task {
  const u = t.pidns.task(tid);
  if (!u || u.exitStatus || (tgid !== -1 && u.group.tgid !== tgid)) fail("ESRCH");
  return u;
}

function sendToThread(t: Task, u: Task, sig: number, info: Buffer, limited = false): number {
  if (!mayKill(t, u.group, sig)) fail("EPERM");
  if (sig === 0) return 0;
  sendSignal({ task: u }, sig, info, limited);
  return 0;
}

export const tgkill: Handler = (t, a) => {
  const [tgid, tid, sig] = [int(a[0]), int(a[1]), int(a[2])];
  if (tgid <= 0 || tid <= 0) fail("EINVAL");
  checkSig(sig);
  return sendToThread(t, threadOf(t, tgid, tid), sig, senderInfo(t, sig, SI_TKILL));
};

export const tkill: Handler = (t, a) => {
  const [tid, sig] = [int(a[0]), int(a[1])];
  if (tid <= 0) fail("EINVAL");
  checkSig(sig);
  return sendToThread(t, threadOf(t, -1, tid), sig, senderInfo(t, sig, SI_TKILL));
};

/**
 * The siginfo a program queues (sigqueue, pthread_sigqueue): its own, except that only the
 * kernel and the process itself may claim SI_USER, a kernel code or SI_TKILL (EPERM).
 */
function queuedInfo(t: Task, targetTgid: number, sig: number, uinfo: number): Buffer {
  const info = t.mm.read(uinfo, 128);
  const code = info.readInt32LE(8);
  if ((code >= 0 || code === SI_TKILL) && targetTgid !== t.pid) fail("EPERM");
  info.writeInt32LE(sig, 0);
  return info;
}

export const rtSigqueueinfo: Handler = (t, a) => {
  const [tgid, sig, uinfo] = [int(a[0]), int(a[1]), addr(a[2])];
  checkSig(sig);
  const info = queuedInfo(t, tgid, sig, uinfo);
  const g = t.pidns.group(tgid);
  if (tgid <= 0 || !g || g.exitStatus) fail("ESRCH");
  if (!mayKill(t, g, sig)) fail("EPERM");
  if (sig !== 0) sendSignal({ group: g }, sig, info, true);
  return 0;
};

export const rtTgsigqueueinfo: Handler = (t, a) => {
  const [tgid, tid, sig, uinfo] = [int(a[0]), int(a[1]), int(a[2]), addr(a[3])];
  if (tgid <= 0 || tid <= 0) fail("EINVAL");
  checkSig(sig);
  const info = queuedInfo(t, tgid, sig, uinfo);
  return sendToThread(t, threadOf(t, tgid, tid), sig, info, true);
};

/**
 * rt_sigreturn: back to where the signal interrupted the program, with the registers, FP
 * state, mask and alternate stack the frame holds (as the handler may have changed them). A
 * frame that cannot be read is a SIGSEGV, forced.
 */
export const rtSigreturn: Handler = (t) => {
  let restored: ReturnType<typeof restoreFrame>;
  try {
    restored = restoreFrame(t, t.cpu);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    forceFault(t, SIGSEGV, makeInfo(SIGSEGV, SI_KERNEL));
    return { kind: "noreturn" };
  }
  t.sigmask = restored.mask & ~UNBLOCKABLE;
  // The alternate stack as sigaltstack would set it from the restored stack pointer; a
  // change it refuses (EPERM while on the stack, a bad size) leaves the current one.
  const s = restored.stack;
  const mode = s.flags & ~SS_AUTODISARM;
  if (!onAltStack(t.altstack, t.cpu.regs.get("rsp"))) {
    if (mode === SS_DISABLE) t.altstack = { sp: 0n, flags: SS_DISABLE, size: 0n };
    else if ((mode === 0 || mode === SS_ONSTACK) && s.size >= MINSIGSTKSZ)
      t.altstack = { sp: s.sp, flags: s.flags & SS_AUTODISARM, size: s.size };
  }
  return { kind: "noreturn" };
};
