// The ptrace platform: the application runs in stub processes under PTRACE_SYSEMU, so each
// of its system calls stops its thread before the host executes it, and the host skips it.
// One stub process is one host address space; each application thread is one host thread
// of it, cloned by a system call injected through a stopped thread (PTRACE_O_TRACECLONE
// attaches it), so the threads of a process run truly in parallel. Every stop of every stub
// thread comes through one event source (events.ts).
import { readFileSync } from "node:fs";
import { MoatError } from "../../spec/errors.js";
import { SysError } from "../../sys/libc.js";
import * as mman from "../../sys/mman.js";
import {
  getpid,
  killQuietly,
  O_RDONLY,
  O_WRONLY,
  tgkill,
  WALL,
  type WaitStatus,
  WNOHANG,
  waitpidSync,
} from "../../sys/process.js";
import {
  cont,
  getRegSet,
  getRegs,
  getSigInfo,
  NT_PRFPREG,
  NT_X86_XSTATE,
  PTRACE_EVENT_CLONE,
  PTRACE_O_EXITKILL,
  PTRACE_O_TRACECLONE,
  PTRACE_O_TRACESYSGOOD,
  pokeReg,
  setOptions,
  setRegSet,
  setRegs,
  sysemu,
  UserRegs,
} from "../../sys/ptrace.js";
import { CpuState } from "./cpu.js";
import { stubEvents } from "./events.js";
import type { Context, HostAddressSpace, Platform, ProcessPlatform, StopEvent } from "./platform.js";
import { STUB_BASE, STUB_GADGET, STUB_GADGET_TRAP_RIP, STUB_SIZE, stubElf } from "./stub.js";

/** The descriptor number under which the stub holds the memory file. */
export const STUB_MEMFD = 3;
/** Where the child finds the stub executable to exec; closed once the stub runs. */
const STUB_EXEC_FD = 4;
const NR_CLOSE = 3;
const NR_MMAP = 9;
const NR_MPROTECT = 10;
const NR_MUNMAP = 11;
const NR_CLONE = 56;
const NR_EXIT = 60;

const SIGTRAP = 5;
const SIGKILL = 9;
const SIGCHLD = 17;
const SIGSTOP = 19;
const WUNTRACED = 2;
const NO_SYSCALL = 0xffffffffffffffffn;
/** About 100 µs of polling on this machine before falling back to the event source. */
const DEFAULT_SPIN_POLLS = 200;

/**
 * What interrupt() sends a running thread. The stub never has children, so the host never
 * sends it SIGCHLD itself, and a traced thread stops for it although its default is ignore.
 */
const INTERRUPT_SIGNAL = SIGCHLD;

// A thread of the same process, sharing what a thread shares (CLONE_UNTRACED is not among
// them: PTRACE_O_TRACECLONE must attach it).
const CLONE_VM = 0x100;
const CLONE_FS = 0x200;
const CLONE_FILES = 0x400;
const CLONE_SIGHAND = 0x800;
const CLONE_THREAD = 0x10000;
const CLONE_SYSVSEM = 0x40000;
const THREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;

/** Larger than any XSAVE area (AMX included); the host shrinks the iovec to the real size. */
const XSTATE_MAX = 16384;

let stubFd: number | undefined;

/**
 * The stub lives in a sealed memfd of this process, executed through /proc/self/fd: there
 * is no file on disk to clean up or to swap for another binary.
 */
function stubFile(): number {
  if (stubFd === undefined) {
    let fd: number;
    try {
      fd = mman.memfdCreate("moat-stub", mman.MFD_CLOEXEC | mman.MFD_ALLOW_SEALING | mman.MFD_EXEC);
    } catch (e) {
      // Kernels before 6.3 do not know MFD_EXEC; their memfds are executable anyway.
      if (!(e instanceof SysError && e.code === "EINVAL")) throw e;
      fd = mman.memfdCreate("moat-stub", mman.MFD_CLOEXEC | mman.MFD_ALLOW_SEALING);
    }
    mman.pwrite(fd, stubElf(getpid()), 0);
    mman.addSeals(fd, mman.F_SEAL_WRITE | mman.F_SEAL_SHRINK | mman.F_SEAL_GROW | mman.F_SEAL_SEAL);
    stubFd = fd;
  }
  return stubFd;
}

/** Which register set holds FP state on this host: XSAVE where the CPU has it. */
let fpType: number | undefined;

function unexpected(pid: number, what: string, st: WaitStatus): MoatError {
  return new MoatError("ENOPLATFORM", `userkernel stub ${pid} misbehaved at ${what} (${JSON.stringify(st)})`);
}

type ThreadState = "stopped" | "running" | "gone";

/** One host thread of a stub: a platform Context. */
export class PtraceContext implements Context {
  state: ThreadState = "stopped";
  /** Registers the host thread holds right now, as last read (selectors, injection base). */
  private readonly host = new UserRegs();
  /** The host registers are not `loaded`'s any more (an injection ran through this thread). */
  private hostStale = true;
  /** The CpuState whose registers the host thread holds. */
  private loaded: CpuState | undefined;
  /** interrupt() came while stopped: the next switchTo returns at once. */
  private pendingInterrupt = false;
  /** The app uses this thread no longer; the first thread stays parked for injections. */
  released = false;

  constructor(
    readonly as: PtraceAddressSpace,
    readonly hostTid: number,
    private readonly spinPolls: number,
  ) {
    getRegs(hostTid, this.host);
  }

  async switchTo(cpu: CpuState): Promise<StopEvent> {
    if (this.state === "gone") return { kind: "killed", signal: SIGKILL };
    if (this.state === "running") throw new MoatError("ESTATE", `thread ${this.hostTid} is already running`);
    if (this.released) throw new MoatError("ESTATE", `thread ${this.hostTid} was released`);
    if (this.pendingInterrupt) {
      this.pendingInterrupt = false;
      return { kind: "interrupted" };
    }
    const tid = this.hostTid;
    try {
      this.load(cpu);
      this.state = "running";
      sysemu(tid, 0);
    } catch (e) {
      // The thread died while stopped (killed from outside, its death consumed for another
      // thread's wait): report it as killed, as a death seen by a wait would be.
      if (!(e instanceof SysError && e.code === "ESRCH")) throw e;
      this.gone();
      return { kind: "killed", signal: SIGKILL };
    }
    // Most syscalls come back within microseconds. Polling for that long on this thread is
    // far cheaper than a wait on the threadpool, which costs two thread wake-ups per
    // syscall; a thread that computes longer is waited for by the event source.
    let st: WaitStatus | undefined;
    for (let i = 0; i < this.spinPolls; i++) {
      const s = waitpidSync(tid, WALL | WNOHANG);
      if (s.kind !== "none") {
        st = s;
        break;
      }
    }
    st ??= await stubEvents.wait(tid);
    return this.decode(st, cpu);
  }

  /** Write what the host thread lacks of `cpu`: all registers, rax alone, or nothing; FP state. */
  private load(cpu: CpuState): void {
    const r = cpu.regs;
    if (r.get("cs") === 0n)
      for (const s of ["cs", "ss", "ds", "es", "fs", "gs"] as const) r.set(s, this.host.get(s));
    if (this.hostStale || this.loaded !== cpu || cpu.dirty === "all") setRegs(this.hostTid, r);
    else if (cpu.dirty === "rax") pokeReg(this.hostTid, "rax", r.get("rax"));
    cpu.dirty = "none";
    this.hostStale = false;
    this.loaded = cpu;
    if (cpu.fpDirty || (cpu.fpSource !== undefined && cpu.fpSource !== this)) this.writeFp(cpu.fpState());
  }

  private decode(st: WaitStatus, cpu: CpuState): StopEvent {
    switch (st.kind) {
      case "exited":
        this.gone();
        return { kind: "exited", code: st.code };
      case "signaled":
        this.gone();
        return { kind: "killed", signal: st.signal };
      case "stopped": {
        this.state = "stopped";
        getRegs(this.hostTid, cpu.regs);
        cpu.ranOn(this);
        if (st.syscall) return { kind: "syscall" };
        if (st.signal === INTERRUPT_SIGNAL) return { kind: "interrupted" };
        return { kind: "signal", signal: st.signal, info: getSigInfo(this.hostTid) };
      }
      default:
        this.state = "stopped";
        throw unexpected(this.hostTid, "a run", st);
    }
  }

  private gone(): void {
    this.state = "gone";
    this.as.threads.delete(this.hostTid);
  }

  /**
   * A running switchTo returns `interrupted` soon. A thread that stops for a system call
   * before the signal lands keeps it pending, so its next switchTo returns `interrupted`
   * at once: spurious, and harmless, since the kernel looks at the task either way.
   */
  interrupt(): void {
    if (this.state === "running") tgkill(this.as.hostPid, this.hostTid, INTERRUPT_SIGNAL);
    else if (this.state === "stopped") this.pendingInterrupt = true;
  }

  readFp(): Buffer {
    if (this.state !== "stopped") throw new MoatError("ESTATE", `thread ${this.hostTid} is not stopped`);
    const buf = Buffer.alloc(XSTATE_MAX);
    if (fpType === undefined) {
      try {
        const n = getRegSet(this.hostTid, NT_X86_XSTATE, buf);
        fpType = NT_X86_XSTATE;
        return buf.subarray(0, n);
      } catch {
        fpType = NT_PRFPREG;
      }
    }
    const n = getRegSet(this.hostTid, fpType, buf);
    return Buffer.from(buf.subarray(0, n));
  }

  private writeFp(bytes: Buffer): void {
    if (fpType === undefined) this.readFp();
    setRegSet(this.hostTid, fpType!, bytes);
  }

  /** Run one host system call in this (stopped) thread; returns raw rax. */
  inject(nr: number, args: Array<number | bigint>): bigint {
    if (this.state !== "stopped")
      throw new MoatError("ESTATE", `userkernel stub thread ${this.hostTid} is not stopped (${this.state})`);
    const tid = this.hostTid;
    const r = this.host;
    this.loadGadget(nr, args);
    this.hostStale = true;
    let st = this.resumeToStop();
    if (nr === NR_CLONE && st.kind === "stopped" && st.event === PTRACE_EVENT_CLONE) {
      // The clone event comes before the call returns; the new thread is attached already.
      st = this.resumeToStop();
    }
    if (st.kind !== "stopped" || st.signal !== SIGTRAP || st.syscall) {
      if (st.kind === "exited" || st.kind === "signaled") this.gone();
      throw unexpected(tid, `an injected syscall ${nr}`, st);
    }
    getRegs(tid, r);
    if (r.get("rip") !== BigInt(STUB_GADGET_TRAP_RIP)) throw unexpected(tid, `an injected syscall ${nr}`, st);
    return r.get("rax");
  }

  /**
   * PTRACE_CONT and wait for the next stop that is not an interrupt: an interrupt signal
   * sent while the thread ran (see interrupt()) may still be pending and stop the thread
   * first; it is kept for the next switchTo instead of being delivered.
   */
  private resumeToStop(): WaitStatus {
    for (;;) {
      cont(this.hostTid, 0);
      const st = waitpidSync(this.hostTid, WALL | WUNTRACED);
      if (st.kind === "stopped" && !st.syscall && st.event === 0 && st.signal === INTERRUPT_SIGNAL) {
        this.pendingInterrupt = true;
        continue;
      }
      return st;
    }
  }

  private loadGadget(nr: number, args: Array<number | bigint>): void {
    const r = this.host;
    r.set("rax", nr);
    const argRegs = ["rdi", "rsi", "rdx", "r10", "r8", "r9"] as const;
    for (let i = 0; i < argRegs.length; i++) r.set(argRegs[i]!, args[i] ?? 0);
    r.set("rip", STUB_GADGET);
    // Not inside a system call: keeps the host's restart logic away from these registers.
    r.set("orig_rax", NO_SYSCALL);
    setRegs(this.hostTid, r);
  }

  /**
   * The app is done with this thread. A stopped thread other than the first exits (an
   * injected exit(2) of this thread alone); the first one stays, parked, to carry injected
   * calls for the others. A running thread is interrupted and released at its next stop.
   */
  release(): void {
    if (this.released || this.state === "gone") return;
    this.released = true;
    if (this.hostTid === this.as.hostPid) return;
    if (this.state === "running") {
      this.released = false;
      this.interrupt();
      return;
    }
    this.loadGadget(NR_EXIT, [0]);
    try {
      // Stops before the exit (a pending interrupt signal) are passed over until it exits.
      while (this.resumeToStop().kind === "stopped");
    } catch {
      // gone already (the whole stub was killed meanwhile)
    }
    this.gone();
  }
}

/** One stub process: a host address space. */
export class PtraceAddressSpace implements HostAddressSpace {
  readonly reserved: Array<{ start: number; end: number }> = [
    { start: STUB_BASE, end: STUB_BASE + STUB_SIZE },
  ];
  readonly threads = new Map<number, PtraceContext>();
  private firstHandedOut = false;
  private released = false;

  private constructor(
    readonly hostPid: number,
    private readonly spinPolls: number,
  ) {}

  /**
   * Start a stub that holds `memfd` as STUB_MEMFD, attached and stopped, host mappings
   * cleared. `spinPolls` bounds the non-blocking waits tried before waiting on the event
   * source (0: always).
   */
  static start(memfd: number, opts: { spinPolls?: number } = {}): PtraceAddressSpace {
    let pid: number;
    try {
      // Out of moat's process group (in the stubs' own): a terminal's ^C reaches moat, which
      // decides what the container gets; the stub still dies with moat (PR_SET_PDEATHSIG,
      // PTRACE_O_EXITKILL).
      pid = stubEvents.spawn(
        `/proc/self/fd/${STUB_EXEC_FD}`,
        ["moat-stub"],
        [
          { dup2: memfd, to: STUB_MEMFD },
          { dup2: stubFile(), to: STUB_EXEC_FD },
          { open: "/dev/null", to: 0, flags: O_RDONLY },
          { open: "/dev/null", to: 1, flags: O_WRONLY },
          { open: "/dev/null", to: 2, flags: O_WRONLY },
          { closeFrom: STUB_EXEC_FD + 1 },
        ],
      );
    } catch (e) {
      throw new MoatError(
        "ENOPLATFORM",
        `cannot start the userkernel stub process (${(e as Error).message}): check that this host allows executing memfds (sysctl vm.memfd_noexec=0) and creating processes`,
        { cause: e },
      );
    }
    const as = new PtraceAddressSpace(pid, opts.spinPolls ?? DEFAULT_SPIN_POLLS);
    try {
      const st = waitpidSync(pid, WALL | WUNTRACED);
      if (st.kind !== "stopped" || st.signal !== SIGSTOP) throw unexpected(pid, "its first stop", st);
      setOptions(pid, PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE);
      const first = new PtraceContext(as, pid, as.spinPolls);
      as.threads.set(pid, first);
      const rip = new UserRegs();
      getRegs(pid, rip);
      if (rip.get("rip") !== BigInt(STUB_GADGET)) throw unexpected(pid, "its first stop", st);
      as.clearHostMappings();
      if (as.inject(NR_CLOSE, [STUB_EXEC_FD]) !== 0n) throw unexpected(pid, "closing its executable", st);
    } catch (e) {
      as.release();
      if (e instanceof SysError && e.code === "EPERM")
        throw new MoatError(
          "ENOPLATFORM",
          "the userkernel cannot trace its stub (ptrace denied): allow ptrace for this user (kernel.yama.ptrace_scope, seccomp profile of the host container) or use the vm isolation",
          { cause: e },
        );
      throw e;
    }
    return as;
  }

  /** Drop the host's own mappings (stack, vdso, vvar) so the whole address space is the app's. */
  private clearHostMappings(): void {
    const maps = readFileSync(`/proc/${this.hostPid}/maps`, "latin1");
    for (const line of maps.split("\n")) {
      const m = /^([0-9a-f]+)-([0-9a-f]+)\s/.exec(line);
      if (!m) continue;
      const start = Number.parseInt(m[1]!, 16);
      const end = Number.parseInt(m[2]!, 16);
      if (start === STUB_BASE || start >= 2 ** 47) continue;
      const r = this.inject(NR_MUNMAP, [start, end - start]);
      if (r !== 0n) this.reserved.push({ start, end });
    }
  }

  /** A stopped thread to run an injected call through (`prefer` if it is stopped). */
  private stoppedThread(prefer?: Context): PtraceContext {
    if (prefer instanceof PtraceContext && prefer.as === this && prefer.state === "stopped") return prefer;
    for (const t of this.threads.values()) if (t.state === "stopped") return t;
    if (this.threads.size === 0)
      throw new MoatError("ESTATE", "userkernel stub is gone: the sandbox was killed");
    throw new MoatError(
      "ESTATE",
      `userkernel stub ${this.hostPid} has no stopped thread to change its mappings through (all are running application code)`,
    );
  }

  newContext(from?: Context): Context {
    if (this.released) throw new MoatError("ESTATE", "userkernel address space was released");
    if (!this.firstHandedOut) {
      this.firstHandedOut = true;
      const first = this.threads.get(this.hostPid);
      if (first) return first;
    }
    const via = this.stoppedThread(from);
    const tid = Number(BigInt.asIntN(64, via.inject(NR_CLONE, [THREAD_FLAGS, 0, 0, 0, 0])));
    if (tid <= 0) throw new SysError("clone in stub", -tid || 12, String(this.hostPid));
    // The new thread reports its first stop (SIGSTOP, from the auto-attach) on its own.
    const st = waitpidSync(tid, WALL | WUNTRACED);
    if (st.kind !== "stopped" || st.signal !== SIGSTOP)
      throw unexpected(tid, "a new thread's first stop", st);
    const ctx = new PtraceContext(this, tid, this.spinPolls);
    this.threads.set(tid, ctx);
    return ctx;
  }

  /** Run one host system call inside the stub, through a stopped thread; returns raw rax. */
  inject(nr: number, args: Array<number | bigint>, via?: Context): bigint {
    return this.stoppedThread(via).inject(nr, args);
  }

  private injectChecked(what: string, nr: number, args: Array<number | bigint>, expect?: number): void {
    const r = BigInt.asIntN(64, this.inject(nr, args));
    if (r < 0n || (expect !== undefined && r !== BigInt(expect)))
      throw new SysError(`${what} in stub`, r < 0n ? Number(-r) : 12, `0x${Number(args[0]).toString(16)}`);
  }

  map(addr: number, length: number, prot: number, fileOffset: number): void {
    this.injectChecked(
      "mmap",
      NR_MMAP,
      [addr, length, prot, mman.MAP_SHARED | mman.MAP_FIXED, STUB_MEMFD, fileOffset],
      addr,
    );
  }

  unmap(addr: number, length: number): void {
    this.injectChecked("munmap", NR_MUNMAP, [addr, length]);
  }

  protect(addr: number, length: number, prot: number): void {
    this.injectChecked("mprotect", NR_MPROTECT, [addr, length, prot]);
  }

  /**
   * Kill the stub and reap every thread. A thread with a switchTo in flight gets its death
   * handed over; the first thread is reaped last, as the host reports it only once the
   * others are gone.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    killQuietly(this.hostPid, SIGKILL);
    const order = [...this.threads.values()].sort(
      (a, b) => Number(a.hostTid === this.hostPid) - Number(b.hostTid === this.hostPid),
    );
    for (const t of order) {
      for (;;) {
        let st: WaitStatus;
        try {
          st = waitpidSync(t.hostTid, WALL);
        } catch {
          st = { pid: t.hostTid, kind: "signaled", signal: SIGKILL, core: false }; // reaped already
        }
        if (st.kind === "exited" || st.kind === "signaled") {
          const running = t.state === "running";
          t.state = "gone";
          if (running) stubEvents.deliver(t.hostTid, st);
          break;
        }
      }
    }
    this.threads.clear();
    stubEvents.reaped(this.hostPid);
  }
}

export class PtracePlatformFactory implements Platform {
  constructor(private readonly opts: { spinPolls?: number } = {}) {}
  newAddressSpace(memfd: number): PtraceAddressSpace {
    return PtraceAddressSpace.start(memfd, this.opts);
  }
}

/**
 * The shape today's kernel drives: one process is one address space with one thread, whose
 * registers it reads and changes here. A thin layer over the address space, one context
 * and the CpuState the task will own once the kernel holds them itself.
 */
export class PtracePlatform implements ProcessPlatform {
  readonly cpu = new CpuState();
  readonly regs = this.cpu.regs;
  private constructor(
    readonly as: PtraceAddressSpace,
    readonly context: Context,
  ) {}

  static start(memfd: number, opts: { spinPolls?: number } = {}): PtracePlatform {
    const as = PtraceAddressSpace.start(memfd, opts);
    return new PtracePlatform(as, as.newContext());
  }

  get hostPid(): number {
    return this.as.hostPid;
  }
  get reserved(): ReadonlyArray<{ start: number; end: number }> {
    return this.as.reserved;
  }
  setEntry(entry: number, sp: number): void {
    this.cpu.setEntry(entry, sp);
  }
  setReturn(value: bigint): void {
    this.cpu.setReturn(value);
  }
  regsChanged(): void {
    this.cpu.regsChanged();
  }
  /** Run until the next stop that is the kernel's business (interruptions are not, here). */
  async run(): Promise<StopEvent> {
    for (;;) {
      const ev = await this.context.switchTo(this.cpu);
      if (ev.kind !== "interrupted") return ev;
    }
  }
  inject(nr: number, args: Array<number | bigint>): bigint {
    return this.as.inject(nr, args);
  }
  map(addr: number, length: number, prot: number, fileOffset: number): void {
    this.as.map(addr, length, prot, fileOffset);
  }
  unmap(addr: number, length: number): void {
    this.as.unmap(addr, length);
  }
  protect(addr: number, length: number, prot: number): void {
    this.as.protect(addr, length, prot);
  }
  kill(): void {
    this.as.release();
  }
}
