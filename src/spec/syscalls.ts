// x86-64 system call names by number (arch/x86/entry/syscalls/syscall_64.tbl): the
// userkernel reports every number an application uses by name, and seccomp profiles name
// the calls they allow.
function run(first: number, names: string): Array<[number, string]> {
  return names.split(" ").map((n, i) => [first + i, n]);
}

export const SYSCALL_NAMES: ReadonlyMap<number, string> = new Map([
  ...run(0, "read write open close stat fstat lstat poll"),
  ...run(8, "lseek mmap mprotect munmap brk rt_sigaction rt_sigprocmask rt_sigreturn"),
  ...run(16, "ioctl pread64 pwrite64 readv writev access pipe select"),
  ...run(24, "sched_yield mremap msync mincore madvise shmget shmat shmctl"),
  ...run(32, "dup dup2 pause nanosleep getitimer alarm setitimer getpid"),
  ...run(40, "sendfile socket connect accept sendto recvfrom sendmsg recvmsg"),
  ...run(48, "shutdown bind listen getsockname getpeername socketpair setsockopt getsockopt"),
  ...run(56, "clone fork vfork execve exit wait4 kill uname"),
  ...run(64, "semget semop semctl shmdt msgget msgsnd msgrcv msgctl"),
  ...run(72, "fcntl flock fsync fdatasync truncate ftruncate getdents getcwd"),
  ...run(80, "chdir fchdir rename mkdir rmdir creat link unlink"),
  ...run(88, "symlink readlink chmod fchmod chown fchown lchown umask"),
  ...run(96, "gettimeofday getrlimit getrusage sysinfo times ptrace getuid syslog"),
  ...run(104, "getgid setuid setgid geteuid getegid setpgid getppid getpgrp"),
  ...run(112, "setsid setreuid setregid getgroups setgroups setresuid getresuid setresgid"),
  ...run(120, "getresgid getpgid setfsuid setfsgid getsid capget capset rt_sigpending"),
  ...run(128, "rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend sigaltstack utime mknod uselib personality"),
  ...run(136, "ustat statfs fstatfs sysfs getpriority setpriority sched_setparam sched_getparam"),
  ...run(
    144,
    "sched_setscheduler sched_getscheduler sched_get_priority_max sched_get_priority_min sched_rr_get_interval mlock munlock mlockall",
  ),
  ...run(152, "munlockall vhangup modify_ldt pivot_root _sysctl prctl arch_prctl adjtimex"),
  ...run(160, "setrlimit chroot sync acct settimeofday mount umount2 swapon"),
  ...run(168, "swapoff reboot sethostname setdomainname iopl ioperm create_module init_module"),
  ...run(176, "delete_module get_kernel_syms query_module quotactl nfsservctl getpmsg putpmsg afs_syscall"),
  ...run(184, "tuxcall security gettid readahead setxattr lsetxattr fsetxattr getxattr"),
  ...run(192, "lgetxattr fgetxattr listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr"),
  ...run(200, "tkill time futex sched_setaffinity sched_getaffinity set_thread_area io_setup io_destroy"),
  ...run(
    208,
    "io_getevents io_submit io_cancel get_thread_area lookup_dcookie epoll_create epoll_ctl_old epoll_wait_old",
  ),
  ...run(
    216,
    "remap_file_pages getdents64 set_tid_address restart_syscall semtimedop fadvise64 timer_create timer_settime",
  ),
  ...run(
    224,
    "timer_gettime timer_getoverrun timer_delete clock_settime clock_gettime clock_getres clock_nanosleep exit_group",
  ),
  ...run(232, "epoll_wait epoll_ctl tgkill utimes vserver mbind set_mempolicy get_mempolicy"),
  ...run(240, "mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr kexec_load waitid"),
  ...run(
    248,
    "add_key request_key keyctl ioprio_set ioprio_get inotify_init inotify_add_watch inotify_rm_watch",
  ),
  ...run(256, "migrate_pages openat mkdirat mknodat fchownat futimesat newfstatat unlinkat"),
  ...run(264, "renameat linkat symlinkat readlinkat fchmodat faccessat pselect6 ppoll"),
  ...run(272, "unshare set_robust_list get_robust_list splice tee sync_file_range vmsplice move_pages"),
  ...run(
    280,
    "utimensat epoll_pwait signalfd timerfd_create eventfd fallocate timerfd_settime timerfd_gettime",
  ),
  ...run(288, "accept4 signalfd4 eventfd2 epoll_create1 dup3 pipe2 inotify_init1 preadv"),
  ...run(
    296,
    "pwritev rt_tgsigqueueinfo perf_event_open recvmmsg fanotify_init fanotify_mark prlimit64 name_to_handle_at",
  ),
  ...run(
    304,
    "open_by_handle_at clock_adjtime syncfs sendmmsg setns getcpu process_vm_readv process_vm_writev",
  ),
  ...run(312, "kcmp finit_module sched_setattr sched_getattr renameat2 seccomp getrandom memfd_create"),
  ...run(320, "kexec_file_load bpf execveat userfaultfd membarrier mlock2 copy_file_range preadv2"),
  ...run(328, "pwritev2 pkey_mprotect pkey_alloc pkey_free statx io_pgetevents rseq"),
  ...run(
    424,
    "pidfd_send_signal io_uring_setup io_uring_enter io_uring_register open_tree move_mount fsopen fsconfig",
  ),
  ...run(432, "fsmount fspick pidfd_open clone3 close_range openat2 pidfd_getfd faccessat2"),
  ...run(
    440,
    "process_madvise epoll_pwait2 mount_setattr quotactl_fd landlock_create_ruleset landlock_add_rule landlock_restrict_self memfd_secret",
  ),
  ...run(
    448,
    "process_mrelease futex_waitv set_mempolicy_home_node cachestat fchmodat2 map_shadow_stack futex_wake futex_wait",
  ),
  ...run(
    456,
    "futex_requeue statmount listmount lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal setxattrat",
  ),
  ...run(464, "getxattrat listxattrat removexattrat open_tree_attr"),
]);

export function syscallName(nr: number): string {
  return SYSCALL_NAMES.get(nr) ?? `syscall_${nr}`;
}

/** Numbers by name, for seccomp profiles. */
export const SYSCALL_NUMBERS: ReadonlyMap<string, number> = new Map(
  [...SYSCALL_NAMES].map(([nr, name]) => [name, nr]),
);
