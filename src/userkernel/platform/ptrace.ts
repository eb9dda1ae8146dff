// The ptrace platform: the application runs in a stub process under PTRACE_SYSEMU, so each
// of its system calls stops the stub before the host executes it, and the host skips it.
import { readFileSync } from "node:fs";
import { MoatError } from "../../spec/errors.js";
import { SysError } from "../../sys/libc.js";
import * as mman from "../../sys/mman.js";
import {
  getpid,
  killQuietly,
  O_RDONLY,
  O_WRONLY,
  spawn,
  WALL,
  type WaitStatus,
  WNOHANG,
  waitpidAsync,
  waitpidSync,
} from "../../sys/process.js";
import {
  cont,
  getRegs,
  PTRACE_O_EXITKILL,
  PTRACE_O_TRACESYSGOOD,
  pokeReg,
  setOptions,
  setRegs,
  sysemu,
  UserRegs,
} from "../../sys/ptrace.js";
import type { Platform, StopEvent } from "./platform.js";
import { STUB_BASE, STUB_GADGET, STUB_GADGET_TRAP_RIP, STUB_SIZE, stubElf } from "./stub.js";

/** The descriptor number under which the stub holds the memory file. */
export const STUB_MEMFD = 3;
/** Where the child finds the stub executable to exec; closed once the stub runs. */
const STUB_EXEC_FD = 4;
const NR_CLOSE = 3;

const SIGTRAP = 5;
const SIGKILL = 9;
const SIGSTOP = 19;
const WUNTRACED = 2;
const NR_MMAP = 9;
const NR_MPROTECT = 10;
const NR_MUNMAP = 11;
const NO_SYSCALL = 0xffffffffffffffffn;
/** About 100 µs of polling on this machine before falling back to a blocking wait. */
const DEFAULT_SPIN_POLLS = 200;

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

type Dirty = "none" | "rax" | "all";

export class PtracePlatform implements Platform {
  readonly regs = new UserRegs();
  readonly reserved: Array<{ start: number; end: number }> = [
    { start: STUB_BASE, end: STUB_BASE + STUB_SIZE },
  ];
  private readonly scratch = new UserRegs();
  private dirty: Dirty = "none";
  private gone = false;
  private waiting = false;

  private constructor(
    readonly hostPid: number,
    private readonly spinPolls: number,
  ) {}

  /**
   * Start a stub that holds `memfd` as STUB_MEMFD, attached and stopped, host mappings
   * cleared. `spinPolls` bounds the non-blocking waits tried before waiting on the threadpool
   * (0: always wait asynchronously).
   */
  static start(memfd: number, opts: { spinPolls?: number } = {}): PtracePlatform {
    let pid: number;
    try {
      pid = spawn(
        `/proc/self/fd/${STUB_EXEC_FD}`,
        ["moat-stub"],
        [],
        [
          { dup2: memfd, to: STUB_MEMFD },
          { dup2: stubFile(), to: STUB_EXEC_FD },
          { open: "/dev/null", to: 0, flags: O_RDONLY },
          { open: "/dev/null", to: 1, flags: O_WRONLY },
          { open: "/dev/null", to: 2, flags: O_WRONLY },
          { closeFrom: STUB_EXEC_FD + 1 },
        ],
        // Out of moat's process group: a terminal's ^C reaches moat, which decides what the
        // container gets; the stub still dies with moat (PR_SET_PDEATHSIG, PTRACE_O_EXITKILL).
        { ownGroup: true },
      );
    } catch (e) {
      throw new MoatError(
        "ENOPLATFORM",
        `cannot start the userkernel stub process (${(e as Error).message}): check that this host allows executing memfds (sysctl vm.memfd_noexec=0) and creating processes`,
        { cause: e },
      );
    }
    const p = new PtracePlatform(pid, opts.spinPolls ?? DEFAULT_SPIN_POLLS);
    try {
      const st = waitpidSync(pid, WALL | WUNTRACED);
      if (st.kind !== "stopped" || st.signal !== SIGSTOP) throw p.unexpected("its first stop", st);
      setOptions(pid, PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD);
      getRegs(pid, p.regs);
      if (p.regs.get("rip") !== BigInt(STUB_GADGET)) throw p.unexpected("its first stop", st);
      p.clearHostMappings();
      if (p.inject(NR_CLOSE, [STUB_EXEC_FD]) !== 0n) throw p.unexpected("closing its executable", st);
    } catch (e) {
      p.kill();
      if (e instanceof SysError && e.code === "EPERM")
        throw new MoatError(
          "ENOPLATFORM",
          "the userkernel cannot trace its stub (ptrace denied): allow ptrace for this user (kernel.yama.ptrace_scope, seccomp profile of the host container) or use the vm isolation",
          { cause: e },
        );
      throw e;
    }
    return p;
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

  private unexpected(what: string, st: WaitStatus): MoatError {
    return new MoatError(
      "ENOPLATFORM",
      `userkernel stub ${this.hostPid} misbehaved at ${what} (${JSON.stringify(st)})`,
    );
  }

  setEntry(entry: number, sp: number): void {
    const r = this.regs;
    for (const name of [
      "r15",
      "r14",
      "r13",
      "r12",
      "rbp",
      "rbx",
      "r11",
      "r10",
      "r9",
      "r8",
      "rax",
      "rcx",
    ] as const)
      r.set(name, 0);
    for (const name of ["rdx", "rsi", "rdi", "fs_base", "gs_base"] as const) r.set(name, 0);
    r.set("orig_rax", NO_SYSCALL);
    r.set("rip", entry);
    r.set("rsp", sp);
    r.set("eflags", 0x202); // IF, plus the always-one bit 1, as the host's start_thread does
    this.dirty = "all";
  }

  setReturn(value: bigint): void {
    this.regs.set("rax", value);
    if (this.dirty === "none") this.dirty = "rax";
  }

  regsChanged(): void {
    this.dirty = "all";
  }

  private flush(): void {
    if (this.dirty === "all") setRegs(this.hostPid, this.regs);
    else if (this.dirty === "rax") pokeReg(this.hostPid, "rax", this.regs.get("rax"));
    this.dirty = "none";
  }

  async run(): Promise<StopEvent> {
    if (this.gone) return { kind: "killed", signal: SIGKILL };
    this.flush();
    sysemu(this.hostPid, 0);
    // Most syscalls come back within microseconds. Polling for that long on this thread is
    // far cheaper than a blocking wait on the threadpool, which costs two thread wake-ups
    // per syscall; a program that computes longer is waited for asynchronously.
    for (let i = 0; i < this.spinPolls; i++) {
      const st = waitpidSync(this.hostPid, WALL | WNOHANG);
      if (st.kind !== "none") return this.decode(st);
    }
    this.waiting = true;
    let st: WaitStatus;
    try {
      st = await waitpidAsync(this.hostPid);
    } finally {
      this.waiting = false;
    }
    return this.decode(st);
  }

  private decode(st: WaitStatus): StopEvent {
    switch (st.kind) {
      case "exited":
        this.gone = true;
        return { kind: "exited", code: st.code };
      case "signaled":
        this.gone = true;
        return { kind: "killed", signal: st.signal };
      case "stopped":
        getRegs(this.hostPid, this.regs);
        return st.syscall ? { kind: "syscall" } : { kind: "signal", signal: st.signal };
      default:
        throw this.unexpected("a run", st);
    }
  }

  inject(nr: number, args: Array<number | bigint>): bigint {
    if (this.gone) throw new MoatError("ESTATE", "userkernel stub is gone: the sandbox was killed");
    const saved = this.regs;
    const r = this.scratch;
    r.copyFrom(saved);
    r.set("rax", nr);
    const argRegs = ["rdi", "rsi", "rdx", "r10", "r8", "r9"] as const;
    for (let i = 0; i < argRegs.length; i++) r.set(argRegs[i]!, args[i] ?? 0);
    r.set("rip", STUB_GADGET);
    // Not inside a system call: keeps the host's restart logic away from these registers.
    r.set("orig_rax", NO_SYSCALL);
    setRegs(this.hostPid, r);
    cont(this.hostPid, 0);
    const st = waitpidSync(this.hostPid);
    if (st.kind !== "stopped" || st.signal !== SIGTRAP || st.syscall) {
      if (st.kind === "exited" || st.kind === "signaled") this.gone = true;
      throw this.unexpected(`an injected syscall ${nr}`, st);
    }
    getRegs(this.hostPid, r);
    if (r.get("rip") !== BigInt(STUB_GADGET_TRAP_RIP)) throw this.unexpected(`an injected syscall ${nr}`, st);
    const ret = r.get("rax");
    setRegs(this.hostPid, saved);
    this.dirty = "none";
    return ret;
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

  kill(): void {
    if (this.gone) return;
    killQuietly(this.hostPid, SIGKILL);
    // A run() in flight owns the wait; it will observe the death itself.
    if (this.waiting) return;
    this.gone = true;
    for (;;) {
      let st: WaitStatus;
      try {
        st = waitpidSync(this.hostPid);
      } catch {
        return; // already reaped
      }
      if (st.kind === "exited" || st.kind === "signaled") return;
    }
  }
}
