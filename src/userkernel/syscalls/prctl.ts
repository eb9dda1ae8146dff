// prctl(2): the options programs use on themselves (names, the parent-death signal,
// dumpable, child subreaper, no_new_privs, timer slack) and the read-only probes of
// security state; capabilities, seccomp filters and the rest are refused with EINVAL.
import { fail } from "../errno.js";
import { procState } from "../kernel/proc-state.js";
import { addr, type Handler, int, uint } from "./types.js";

const PR_SET_PDEATHSIG = 1;
const PR_GET_PDEATHSIG = 2;
const PR_GET_DUMPABLE = 3;
const PR_SET_DUMPABLE = 4;
const PR_GET_KEEPCAPS = 7;
const PR_SET_NAME = 15;
const PR_GET_NAME = 16;
const PR_GET_SECCOMP = 21;
const PR_SET_TIMERSLACK = 29;
const PR_GET_TIMERSLACK = 30;
const PR_SET_CHILD_SUBREAPER = 36;
const PR_GET_CHILD_SUBREAPER = 37;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_GET_NO_NEW_PRIVS = 39;
const PR_CAPBSET_READ = 23;
const PR_CAPBSET_DROP = 24;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_IS_SET = 1;
const PR_CAP_AMBIENT_RAISE = 2;
const PR_CAP_AMBIENT_LOWER = 3;
const PR_CAP_AMBIENT_CLEAR_ALL = 4;
/** CAP_LAST_CAP (identity.ts's capget reports the same). */
const CAP_LAST_CAP = 40;
const TASK_COMM_LEN = 16;
/** Linux's default timer slack of a task (50 us). */
const DEFAULT_TIMERSLACK_NS = 50_000;

export const prctl: Handler = (t, a) => {
  const option = int(a[0]);
  switch (option) {
    case PR_SET_NAME: {
      const raw = t.mm.read(addr(a[1]), TASK_COMM_LEN);
      const z = raw.indexOf(0);
      t.comm = raw.subarray(0, z < 0 ? TASK_COMM_LEN - 1 : Math.min(z, TASK_COMM_LEN - 1)).toString("latin1");
      return 0;
    }
    case PR_GET_NAME: {
      const b = Buffer.alloc(TASK_COMM_LEN);
      b.write(t.comm.slice(0, TASK_COMM_LEN - 1), "latin1");
      t.mm.write(addr(a[1]), b);
      return 0;
    }
    case PR_SET_PDEATHSIG: {
      const sig = int(a[1]);
      if (sig < 0 || sig > 64) fail("EINVAL");
      t.pdeathsig = sig;
      return 0;
    }
    case PR_GET_PDEATHSIG:
      t.mm.writeU32(addr(a[1]), t.pdeathsig);
      return 0;
    case PR_GET_DUMPABLE:
      return t.dumpable;
    case PR_SET_DUMPABLE: {
      const v = int(a[1]);
      if (v !== 0 && v !== 1) fail("EINVAL");
      t.dumpable = v;
      return 0;
    }
    case PR_SET_CHILD_SUBREAPER:
      // Stored for wait's reparenting (one process per sandbox today: no orphans yet).
      t.group.subreaper = a[1] !== 0n;
      return 0;
    case PR_GET_CHILD_SUBREAPER:
      t.mm.writeU32(addr(a[1]), t.group.subreaper ? 1 : 0);
      return 0;
    case PR_SET_NO_NEW_PRIVS:
      if (a[1] !== 1n || a[2] !== 0n || a[3] !== 0n || a[4] !== 0n) fail("EINVAL");
      t.noNewPrivs = true;
      return 0;
    case PR_GET_NO_NEW_PRIVS:
      return t.noNewPrivs ? 1 : 0;
    case PR_SET_TIMERSLACK: {
      // A hint to the host's timers; 0 restores the default. Recorded, as sleeps are Node's.
      const ns = a[1] ?? 0n;
      procState(t).timerslackNs =
        ns === 0n ? DEFAULT_TIMERSLACK_NS : Number(ns > 0xffff_ffffn ? 0xffff_ffffn : ns);
      return 0;
    }
    case PR_GET_TIMERSLACK:
      return procState(t).timerslackNs;
    case PR_GET_SECCOMP:
      // No seccomp filter inside the sandbox (the sandbox itself is the filter).
      return 0;
    case PR_GET_KEEPCAPS:
      return 0;
    // The bounding set is every capability and stays so: the kernel's privilege is euid 0
    // (see capset), so dropping one from it is refused rather than pretended.
    case PR_CAPBSET_READ:
      if (uint(a[1]) > CAP_LAST_CAP) fail("EINVAL");
      return 1;
    case PR_CAPBSET_DROP:
      if (uint(a[1]) > CAP_LAST_CAP) fail("EINVAL");
      return fail("EPERM", "the userkernel's privilege is euid 0: it cannot drop single capabilities");
    // No ambient capabilities (the inheritable set is empty): none is set, none can be raised.
    case PR_CAP_AMBIENT: {
      const sub = uint(a[1]);
      if (sub === PR_CAP_AMBIENT_CLEAR_ALL) return 0;
      if (uint(a[2]) > CAP_LAST_CAP) fail("EINVAL");
      if (sub === PR_CAP_AMBIENT_IS_SET || sub === PR_CAP_AMBIENT_LOWER) return 0;
      if (sub === PR_CAP_AMBIENT_RAISE) fail("EPERM");
      return fail("EINVAL");
    }
    default:
      return fail("EINVAL", `prctl option ${option} not supported`);
  }
};
