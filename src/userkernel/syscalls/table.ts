// THE system call table: every x86-64 syscall number the userkernel serves, with its handler
// and how completely it follows Linux. A number missing here returns -ENOSYS and is
// reported by name at the end of the run.
import { fail } from "../errno.js";
import * as clone from "./clone.js";
import * as exec from "./exec.js";
import * as fs from "./fs.js";
import * as path from "./fs-path.js";
import * as identity from "./identity.js";
import * as mm from "./mm.js";
import { SYSCALL_NAMES } from "./names.js";
import * as poll from "./poll.js";
import * as proc from "./process.js";
import * as sched from "./sched.js";
import * as signal from "./signal.js";
import * as time from "./time.js";
import type { Handler, Support, SyscallEntry } from "./types.js";
import * as wait4 from "./wait4.js";
import * as xattr from "./xattr.js";

const enosys: Handler = () => fail("ENOSYS");

// [number, handler, support, note?]; the name comes from the number.
const entries: Array<[number, Handler, Support, string?]> = [
  [0, fs.read, "full"],
  [1, fs.write, "full"],
  [3, fs.close, "full"],
  [2, path.open, "partial", "no O_TMPFILE"],
  [4, path.stat, "full"],
  [5, fs.fstat, "full", "host stdio streams report a pipe"],
  [6, path.lstat, "full"],
  [7, poll.poll, "partial", "readiness of pipes, stdio and files; no sockets yet"],
  [8, fs.lseek, "full"],
  [9, mm.mmap, "partial", "files: copied at map time (so is read-only MAP_SHARED); writable shared: ENODEV"],
  [10, mm.mprotect, "full"],
  [11, mm.munmap, "full"],
  [12, mm.brk, "full"],
  [13, signal.rtSigaction, "partial", "recorded; signal delivery is not implemented yet"],
  [14, signal.rtSigprocmask, "full"],
  [16, fs.ioctl, "partial", "no terminals yet: TCGETS/TIOCGWINSZ give ENOTTY; FIONREAD on pipes and files"],
  [17, fs.pread64, "full"],
  [18, fs.pwrite64, "full"],
  [19, fs.readv, "full"],
  [20, fs.writev, "full"],
  [21, path.access, "full"],
  [22, fs.pipe, "full"],
  [23, poll.select, "partial", "as poll; the time left is written back to the timeout"],
  [24, sched.schedYield, "full"],
  [25, mm.mremap, "partial", "no MREMAP_DONTUNMAP, no duplication of shared mappings"],
  [26, mm.noop, "full", "msync: the memory file is the backing store"],
  [28, mm.madvise, "full"],
  [32, fs.dup, "full"],
  [33, fs.dup2, "full"],
  [
    35,
    time.nanosleep,
    "partial",
    "a block with one timer; EINTR with rem is there for when signals interrupt it (not yet)",
  ],
  [39, proc.getpid, "full"],
  [40, fs.sendfile, "full", "short counts of up to 1 MiB per call"],
  [56, clone.clone, "partial", "processes; no threads (CLONE_THREAD) yet, CLONE_VM copies; no pidfd"],
  [57, clone.fork, "full"],
  [58, clone.vfork, "partial", "the parent waits for the child's execve or exit; the memory is a copy"],
  [59, exec.execve, "partial", "static and dynamic ELF, #! scripts"],
  [60, proc.exit, "full", "ends the thread; the last ends the process"],
  [61, wait4.wait4, "full"],
  [62, signal.kill, "partial", "to itself only; caught signals need delivery (ENOSYS)"],
  [63, identity.uname, "full"],
  [72, fs.fcntl, "partial", "no locks, no F_SETOWN/F_NOTIFY"],
  [73, fs.flock, "partial", "one process: never contended, always granted"],
  [74, fs.fsync, "full"],
  [75, fs.fsync, "full", "fdatasync"],
  [76, path.truncate, "full"],
  [77, fs.ftruncate, "full"],
  [79, path.getcwd, "full"],
  [80, path.chdir, "full"],
  [81, path.fchdir, "full"],
  [82, path.rename, "full"],
  [83, path.mkdir, "full"],
  [84, path.rmdir, "full"],
  [85, path.creat, "full"],
  [86, path.link, "full"],
  [87, path.unlink, "full"],
  [88, path.symlink, "full"],
  [89, path.readlink, "full", "without a rootfs only /proc/self/exe"],
  [90, path.chmod, "full"],
  [91, path.fchmod, "full"],
  [92, path.chown, "full"],
  [93, path.fchown, "full"],
  [94, path.lchown, "full"],
  [95, sched.umask, "full"],
  [96, time.gettimeofday, "full"],
  [97, proc.getrlimit, "full"],
  [98, sched.getrusage, "partial", "times only"],
  [99, sched.sysinfo, "partial", "uptime and memory"],
  [100, sched.times, "partial", "user time is time since boot"],
  [102, identity.getuid, "full"],
  [104, identity.getgid, "full"],
  [105, identity.setuid, "full"],
  [106, identity.setgid, "full"],
  [107, identity.geteuid, "full"],
  [108, identity.getegid, "full"],
  [109, identity.setpgid, "full"],
  [110, proc.getppid, "full"],
  [111, identity.getpgrp, "full"],
  [112, identity.setsid, "full"],
  [115, identity.getgroups, "full"],
  [116, identity.setgroups, "full", "privilege is euid 0 in the sandbox, as for setuid"],
  [117, identity.setresuid, "full"],
  [118, identity.getresuid, "full"],
  [119, identity.setresgid, "full"],
  [120, identity.getresgid, "full"],
  [121, identity.getpgid, "full"],
  [124, identity.getsid, "full"],
  [127, signal.rtSigpending, "full"],
  [131, signal.sigaltstack, "full"],
  [133, path.mknod, "partial", "regular files, FIFOs, sockets; device nodes are EPERM"],
  [137, path.statfs, "full"],
  [138, path.fstatfs, "full"],
  [149, mm.noop, "full", "mlock: memory is never swapped out"],
  [150, mm.noop, "full", "munlock"],
  [
    157,
    proc.prctl,
    "partial",
    "name, pdeathsig, dumpable, child_subreaper, no_new_privs; no caps or seccomp",
  ],
  [158, proc.archPrctl, "partial", "ARCH_SET/GET_FS/GS only"],
  [160, proc.setrlimit, "full"],
  [161, path.chroot, "full"],
  [162, fs.sync, "full", "nothing to write back: the overlay lives in memory"],
  [186, proc.gettid, "full"],
  [188, xattr.pathXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [189, xattr.lpathXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [190, xattr.fdXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [191, xattr.pathXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [192, xattr.lpathXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [193, xattr.fdXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [194, xattr.pathXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [195, xattr.lpathXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [196, xattr.fdXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [197, xattr.pathXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [198, xattr.lpathXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [199, xattr.fdXattr, "partial", "no file system keeps extended attributes: EOPNOTSUPP"],
  [200, signal.tkill, "partial", "to itself only; caught signals need delivery (ENOSYS)"],
  [201, time.time, "full"],
  [202, sched.futex, "partial", "one task: wakes find no one, matching waits are ENOSYS"],
  [204, sched.schedGetaffinity, "full", "one CPU"],
  [217, fs.getdents64, "full"],
  [218, proc.setTidAddress, "full"],
  [221, fs.fadvise64, "full", "advice is accepted and ignored"],
  [228, time.clockGettime, "partial", "no CPU clocks of clock_getcpuclockid (negative ids are EINVAL)"],
  [229, time.clockGetres, "full"],
  [230, time.clockNanosleep, "partial", "as nanosleep (rem only if relative); process CPU clock: wall time"],
  [231, proc.exitGroup, "full"],
  [234, signal.tgkill, "partial", "to itself only; caught signals need delivery (ENOSYS)"],
  [247, wait4.waitid, "partial", "no pidfds (P_PIDFD: EBADF)"],
  [257, path.openat, "partial", "no O_TMPFILE"],
  [258, path.mkdirat, "full"],
  [259, path.mknodat, "partial", "regular files, FIFOs, sockets; device nodes are EPERM"],
  [260, path.fchownat, "full"],
  [262, path.newfstatat, "full"],
  [263, path.unlinkat, "full"],
  [264, path.renameat, "full"],
  [265, path.linkat, "full"],
  [266, path.symlinkat, "full"],
  [267, path.readlinkat, "full"],
  [268, path.fchmodat, "full"],
  [269, path.faccessat, "full"],
  [280, path.utimensat, "full"],
  [273, proc.setRobustList, "full"],
  [292, fs.dup3, "full"],
  [293, fs.pipe2, "partial", "no O_DIRECT (packet mode)"],
  [295, fs.preadv, "full"],
  [296, fs.pwritev, "full"],
  [302, proc.prlimit64, "full"],
  [306, fs.syncfs, "full", "nothing to write back"],
  [309, sched.getcpu, "full"],
  [316, path.renameat2, "partial", "no RENAME_WHITEOUT"],
  [318, identity.getrandom, "full"],
  [322, exec.execveat, "partial", "no flags; static and dynamic ELF, #! scripts"],
  [332, path.statx, "partial", "basic stats only (no btime, no mount id)"],
  [334, enosys, "error", "rseq: glibc falls back to plain sched_getcpu"],
  [435, clone.clone3, "partial", "as clone; set_tid EPERM, cgroup EBADF (unprivileged)"],
  [436, fs.closeRange, "full"],
  [439, path.faccessat2, "full"],
  [270, poll.pselect6, "partial", "as select; the signal mask waits for signal delivery"],
  [
    271,
    poll.ppoll,
    "partial",
    "as poll, and the time left is written back; the signal mask waits for signal delivery",
  ],
];

function build(): ReadonlyMap<number, SyscallEntry> {
  const table = new Map<number, SyscallEntry>();
  for (const [nr, handler, support, note] of entries) {
    const name = SYSCALL_NAMES.get(nr);
    if (!name) throw new Error(`syscall table: unknown number ${nr}`);
    if (table.has(nr)) throw new Error(`syscall table: ${name} listed twice`);
    const e: SyscallEntry = { name, handler, support };
    if (note !== undefined) e.note = note;
    table.set(nr, e);
  }
  return table;
}

export const SYSCALLS = build();
