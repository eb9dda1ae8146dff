// execve: replace the program of the process with another from the container's rootfs.
// Everything that can fail with an errno is checked first; past the point of no return the
// old address space is gone, and a failure there ends the process with SIGSEGV, as on Linux.
import { fail, KernelError } from "../errno.js";
import { hostFailureAsErrno } from "../kernel/clone.js";
import { readProgram } from "../kernel/exec.js";
import { noteInitialStack } from "../kernel/proc-state.js";
import type { Task } from "../kernel/task.js";
import { execTimers } from "../kernel/timers.js";
import { parseElf } from "../loader/elf.js";
import { loadElf } from "../loader/load.js";
import { AddressSpace } from "../mm/addrspace.js";
import { randomLayout } from "../mm/layout.js";
import { CpuState } from "../platform/platform.js";
import { atArg, fsCall, pathArg } from "./fs-common.js";
import { addr, type Control, type Handler, int } from "./types.js";

/** Linux's limits: one string may be 32 pages, and argv + envp count at most this many. */
const MAX_ARG_STRLEN = 32 * 4096;
const MAX_ARG_STRINGS = 0x7fffffff;
const ARG_BYTES = 2 * 1024 * 1024;
const SIGSEGV = 11;
const SIGKILL = 9;
const AT_EMPTY_PATH = 0x1000;
const AT_SYMLINK_NOFOLLOW = 0x100;

/** A NULL-terminated array of strings (argv, envp); a NULL array is empty, as Linux allows. */
function stringArray(t: Task, ptr: number): string[] {
  const out: string[] = [];
  if (ptr === 0) return out;
  let bytes = 0;
  for (let i = 0; i < MAX_ARG_STRINGS; i++) {
    const p = addr(t.mm.readU64(ptr + i * 8));
    if (p === 0) return out;
    // Byte strings: whatever bytes the program passed reach the new program unchanged.
    const s = t.mm.readCString(p, MAX_ARG_STRLEN, "latin1", "E2BIG");
    bytes += s.length + 1;
    if (bytes > ARG_BYTES) fail("E2BIG");
    out.push(s);
  }
  return fail("E2BIG");
}

async function execAt(
  t: Task,
  dirfd: bigint,
  path: bigint | undefined,
  argvPtr: bigint | undefined,
  envPtr: bigint | undefined,
  flags: number,
): Promise<Control> {
  if (flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) fail("EINVAL");
  if (flags) fail("ENOSYS", "execveat flags");
  const { vfs, ctx } = fsCall(t);
  const name = pathArg(t, path);
  const argv = stringArray(t, addr(argvPtr));
  const env = stringArray(t, addr(envPtr));
  const first = { file: await vfs.openExec(ctx, atArg(t, dirfd), name), path: name };
  const program = await readProgram(vfs, ctx, first, argv);
  const image = program.image;
  // Whatever makes the image unloadable is found before the old program is gone.
  const elf = parseElf(image);
  if (elf.interp !== undefined && program.interp) parseElf(program.interp.image);

  // The new program's address space, made while a failure can still be reported.
  const platform =
    t.kernel.platform ?? fail("ENOSYS", "the kernel has no platform to make address spaces with");
  const layout = t.group.layout ?? randomLayout();
  const { mm, thread } = hostFailureAsErrno(t, "execve", () => {
    const host = platform.newAddressSpace(t.mm.mem.fd);
    const space = new AddressSpace(t.mm.mem, host, host.reserved, layout);
    try {
      return { mm: space, thread: host.newContext() };
    } catch (e) {
      space.unref();
      throw e;
    }
  });

  // The point of no return. The other threads of the group end (their host threads go
  // with the old address space), the old memory is dropped (a vfork parent keeps it).
  for (const other of [...t.group.tasks]) {
    if (other === t) continue;
    other.exit({ signal: SIGKILL });
    other.interrupt();
  }
  t.takeLeaderTid();
  const cpu = new CpuState();
  t.execInto(mm, thread, cpu);
  t.unshareForExec();
  t.fds.closeOnExec();
  t.sighand.resetForExec();
  t.altstack = { sp: 0n, flags: 2 /* SS_DISABLE */, size: 0n };
  t.clearChildTid = 0;
  t.robustList = { head: 0n, len: 0n };
  // POSIX timers do not survive execve; interval timers do (Linux's exit_itimers).
  execTimers(t.group);
  t.comm = (name.split("/").pop() ?? "").slice(0, 15);
  t.group.exe = program.exe;
  t.group.cmdline = program.argv;
  t.group.execed = true;
  // A vfork parent runs again once its child has a program of its own.
  t.vforkDone?.();
  t.vforkDone = undefined;
  try {
    const c = t.creds;
    const loaded = loadElf(t.mm, {
      image,
      interp: program.interp,
      path: program.exe,
      layout,
      argv: program.argv,
      env,
      execfn: name,
      uid: c.uid,
      euid: c.euid,
      gid: c.gid,
      egid: c.egid,
    });
    t.cpu.setEntry(loaded.entry, loaded.sp);
    noteInitialStack(t);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    return { kind: "exit", status: { signal: SIGSEGV }, group: true };
  }
  return { kind: "noreturn" };
}

export const execve: Handler = (t, a) => execAt(t, -100n, a[0], a[1], a[2], 0);
export const execveat: Handler = (t, a) => execAt(t, a[0]!, a[1], a[2], a[3], int(a[4]));
