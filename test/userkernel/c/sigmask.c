// Signal state a program sets up without any signal being delivered: the blocked mask,
// dispositions, the alternate stack and the pending set. Masks go through the raw system
// calls (glibc hides SIGCANCEL/SIGSETXID and adds SA_RESTORER); dispositions both raw and
// through sigaction(). Prints only facts that hold on any Linux: values, errno names.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif
// The kernel's constant (glibc's MINSIGSTKSZ may be a sysconf() of the host's auxv).
#define KMINSIGSTKSZ 2048

static void *const BAD = (void *)8;
static const uint64_t RODATA[4] = {1, 2, 3, 4};

/** The kernel's struct sigaction on x86-64 (not glibc's). */
struct ksigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

static const char *E(long r) {
  if (r == 0) return "0";
  return r < 0 ? strerrorname_np(errno) : "positive";
}

static uint64_t bit(int sig) { return 1ULL << (sig - 1); }

static long procmask(int how, const void *set, void *old, size_t size) {
  return syscall(SYS_rt_sigprocmask, how, set, old, size);
}

static uint64_t mask(void) {
  uint64_t m = 0xdeadbeef;
  procmask(SIG_BLOCK, NULL, &m, 8);
  return m;
}

static long action(int sig, const void *act, void *old, size_t size) {
  return syscall(SYS_rt_sigaction, sig, act, old, size);
}

static void on_usr1(int sig) { (void)sig; }

static void altstack(const char *what, const stack_t *ss, char *buf) {
  stack_t old;
  memset(&old, 0x55, sizeof old);
  long r = syscall(SYS_sigaltstack, ss, &old);
  printf("sigaltstack %s: %s", what, E(r));
  if (r == 0) {
    long off = old.ss_sp == NULL ? -1 : (char *)old.ss_sp - buf;
    printf(" old sp %ld flags %d size %zu", off, old.ss_flags, old.ss_size);
  } else {
    unsigned char *p = (unsigned char *)&old;
    int untouched = 1;
    for (size_t i = 0; i < sizeof old; i++) untouched &= p[i] == 0x55;
    printf(" old untouched %d", untouched);
  }
  printf("\n");
}

/** sigaltstack(ss, old) made with the stack pointer at `sp` (as a signal handler would run). */
static long altstack_from(const stack_t *ss, stack_t *old, char *sp) {
  long ret;
  __asm__ volatile("mov %%rsp, %%r12\n\t"
                   "mov %[sp], %%rsp\n\t"
                   "syscall\n\t"
                   "mov %%r12, %%rsp"
                   : "=a"(ret)
                   : "0"((long)SYS_sigaltstack), "D"(ss), "S"(old), [sp] "r"(sp)
                   : "rcx", "r11", "r12", "memory");
  if (ret < 0) {
    errno = (int)-ret;
    return -1;
  }
  return ret;
}

int main(void) {
  // rt_sigprocmask.
  printf("initial mask %#llx\n", (unsigned long long)mask());
  uint64_t set = bit(SIGUSR1) | bit(SIGUSR2), old = 0;
  long r = procmask(SIG_BLOCK, &set, NULL, 8);
  printf("block usr1 usr2: %s mask %#llx\n", E(r), (unsigned long long)mask());
  set = bit(SIGUSR1);
  r = procmask(SIG_UNBLOCK, &set, NULL, 8);
  printf("unblock usr1: %s mask %#llx\n", E(r), (unsigned long long)mask());
  set = bit(SIGINT) | bit(SIGTERM);
  r = procmask(SIG_SETMASK, &set, &old, 8);
  printf("setmask int term: %s old %#llx mask %#llx\n", E(r), (unsigned long long)old, (unsigned long long)mask());
  set = bit(SIGKILL) | bit(SIGSTOP) | bit(SIGHUP);
  r = procmask(SIG_BLOCK, &set, NULL, 8);
  printf("block kill stop hup: %s mask %#llx\n", E(r), (unsigned long long)mask());
  set = ~0ULL;
  r = procmask(SIG_SETMASK, &set, NULL, 8);
  printf("setmask all: %s mask %#llx\n", E(r), (unsigned long long)mask());
  set = bit(SIGQUIT);
  r = procmask(SIG_SETMASK, &set, &set, 8);
  printf("setmask quit, old into the same buffer: %s old %#llx mask %#llx\n", E(r), (unsigned long long)set,
         (unsigned long long)mask());
  set = bit(SIGPIPE);
  r = procmask(3, &set, NULL, 8);
  printf("bad how: %s mask %#llx\n", E(r), (unsigned long long)mask());
  printf("bad how without a set: %s\n", E(procmask(3, NULL, &old, 8)));
  printf("sigsetsize 4: %s\n", E(procmask(SIG_BLOCK, &set, NULL, 4)));
  printf("sigsetsize 16: %s\n", E(procmask(SIG_BLOCK, NULL, &old, 16)));
  printf("bad set: %s\n", E(procmask(SIG_BLOCK, BAD, NULL, 8)));
  // The new mask applies even when storing the old one fails.
  r = procmask(SIG_BLOCK, &set, BAD, 8);
  printf("bad old set: %s mask %#llx\n", E(r), (unsigned long long)mask());
  printf("read-only old set: %s\n", E(procmask(SIG_BLOCK, NULL, (void *)RODATA, 8)));
  set = 0;
  procmask(SIG_SETMASK, &set, NULL, 8);
  sigset_t ls;
  sigemptyset(&ls);
  sigaddset(&ls, SIGALRM);
  sigprocmask(SIG_BLOCK, &ls, NULL);
  sigprocmask(SIG_BLOCK, NULL, &ls);
  printf("libc sigprocmask alrm: %d %d\n", sigismember(&ls, SIGALRM), sigismember(&ls, SIGUSR1));
  sigemptyset(&ls);
  sigprocmask(SIG_SETMASK, &ls, NULL);

  // rt_sigaction through libc, as programs use it.
  struct sigaction sa, got;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGKILL);
  memset(&got, 0x55, sizeof got);
  r = sigaction(SIGUSR2, NULL, &got);
  printf("default usr2: %s dfl %d flags %#x\n", E(r), got.sa_handler == SIG_DFL, got.sa_flags);
  printf("install usr1: %s\n", E(sigaction(SIGUSR1, &sa, NULL)));
  memset(&got, 0, sizeof got);
  sigaction(SIGUSR1, NULL, &got);
  printf("read back usr1: handler %d flags %#x int %d kill %d term %d restorer set %d\n", got.sa_handler == on_usr1,
         got.sa_flags, sigismember(&got.sa_mask, SIGINT), sigismember(&got.sa_mask, SIGKILL),
         sigismember(&got.sa_mask, SIGTERM), got.sa_restorer != NULL);
  // The raw view: glibc's restorer and SA_RESTORER, the mask without SIGKILL.
  struct ksigaction k;
  memset(&k, 0x55, sizeof k);
  r = action(SIGUSR1, NULL, &k, 8);
  printf("raw usr1: %s handler %d flags %#llx restorer same %d mask %#llx\n", E(r), k.handler == (uint64_t)on_usr1,
         (unsigned long long)k.flags, k.restorer == (uint64_t)got.sa_restorer, (unsigned long long)k.mask);
  sa.sa_handler = SIG_IGN;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  struct sigaction prev;
  r = sigaction(SIGUSR1, &sa, &prev);
  printf("ignore usr1: %s previous handler %d\n", E(r), prev.sa_handler == on_usr1);
  sigaction(SIGUSR1, NULL, &got);
  printf("read back ignored: %d\n", got.sa_handler == SIG_IGN);
  printf("libc sigaction kill: %s\n", E(sigaction(SIGKILL, &sa, NULL)));
  printf("libc sigaction stop: %s\n", E(sigaction(SIGSTOP, &sa, NULL)));
  r = sigaction(SIGKILL, NULL, &got);
  printf("libc read kill: %s dfl %d\n", E(r), got.sa_handler == SIG_DFL);

  struct ksigaction act = {(uint64_t)SIG_IGN, 0, 0, bit(SIGSTOP) | bit(SIGHUP)};
  printf("raw kill: %s\n", E(action(SIGKILL, &act, NULL, 8)));
  printf("raw stop: %s\n", E(action(SIGSTOP, &act, NULL, 8)));
  printf("raw read stop: %s\n", E(action(SIGSTOP, NULL, &k, 8)));
  printf("raw signal 0: %s\n", E(action(0, &act, NULL, 8)));
  printf("raw signal 0 read: %s\n", E(action(0, NULL, &k, 8)));
  printf("raw signal 65: %s\n", E(action(65, &act, NULL, 8)));
  printf("raw signal -1: %s\n", E(action(-1, NULL, &k, 8)));
  r = action(64, &act, NULL, 8);
  memset(&k, 0, sizeof k);
  action(64, NULL, &k, 8);
  printf("raw signal 64: %s ign %d mask %#llx\n", E(r), k.handler == (uint64_t)SIG_IGN, (unsigned long long)k.mask);
  // Flag bits the kernel does not know are dropped, so programs can probe for support.
  struct ksigaction odd = {(uint64_t)SIG_IGN, SA_SIGINFO | 0x400 | 0x8 | 0x100000, 0, 0};
  r = action(SIGURG, &odd, NULL, 8);
  memset(&k, 0, sizeof k);
  action(SIGURG, NULL, &k, 8);
  printf("raw unknown flags: %s flags %#llx\n", E(r), (unsigned long long)k.flags);
  printf("raw sigsetsize 4: %s\n", E(action(SIGUSR2, &act, NULL, 4)));
  printf("raw bad act: %s\n", E(action(SIGUSR2, BAD, NULL, 8)));
  printf("raw bad act for signal 0: %s\n", E(action(0, BAD, NULL, 8)));
  // The new action is installed even when storing the old one fails.
  r = action(SIGUSR2, &act, BAD, 8);
  memset(&k, 0, sizeof k);
  action(SIGUSR2, NULL, &k, 8);
  printf("raw bad old act: %s installed %d\n", E(r), k.handler == (uint64_t)SIG_IGN);
  // The same buffer for both: the old action comes back, the new one is installed.
  struct ksigaction both = {(uint64_t)SIG_DFL, 0, 0, bit(SIGTERM)};
  r = action(SIGUSR2, &both, &both, 8);
  memset(&k, 0, sizeof k);
  action(SIGUSR2, NULL, &k, 8);
  printf("raw same buffer: %s old ign %d new dfl %d mask %#llx\n", E(r), both.handler == (uint64_t)SIG_IGN,
         k.handler == (uint64_t)SIG_DFL, (unsigned long long)k.mask);

  // sigaltstack.
  static char buf[65536];
  altstack("initial", NULL, buf);
  stack_t ss = {buf, 0, 16384};
  altstack("set 16k", &ss, buf);
  altstack("get", NULL, buf);
  ss.ss_flags = SS_ONSTACK;
  altstack("set SS_ONSTACK", &ss, buf);
  ss.ss_flags = SS_AUTODISARM;
  ss.ss_size = 8192;
  altstack("set autodisarm 8k", &ss, buf);
  altstack("get", NULL, buf);
  ss.ss_flags = 4;
  altstack("flags 4", &ss, buf);
  ss.ss_flags = SS_DISABLE | SS_ONSTACK;
  altstack("flags disable|onstack", &ss, buf);
  ss.ss_flags = 0;
  ss.ss_size = KMINSIGSTKSZ - 1;
  altstack("size MINSIGSTKSZ-1", &ss, buf);
  ss.ss_size = 1024;
  altstack("size 1024", &ss, buf);
  ss.ss_size = KMINSIGSTKSZ;
  altstack("size MINSIGSTKSZ", &ss, buf);
  // Running on the alternate stack: reported as SS_ONSTACK, and it cannot be changed.
  stack_t onst;
  memset(&onst, 0x55, sizeof onst);
  r = altstack_from(NULL, &onst, buf + 1024);
  printf("sigaltstack from the stack: %s flags %d\n", E(r), onst.ss_flags);
  r = altstack_from(&ss, &onst, buf + 1024);
  printf("sigaltstack change from the stack: %s\n", E(r));
  r = altstack_from(NULL, &onst, buf + 4096);
  printf("sigaltstack from above the stack: %s flags %d\n", E(r), onst.ss_flags);
  ss.ss_flags = SS_AUTODISARM;
  altstack("set autodisarm 2k", &ss, buf);
  r = altstack_from(NULL, &onst, buf + 1024);
  printf("sigaltstack from an auto-disarming stack: %s flags %d\n", E(r), onst.ss_flags);
  r = altstack_from(&ss, NULL, buf + 1024);
  printf("sigaltstack change from an auto-disarming stack: %s\n", E(r));
  stack_t off = {buf + 100, SS_DISABLE, 5};
  altstack("disable", &off, buf);
  altstack("get", NULL, buf);
  printf("sigaltstack bad ss: %s\n", E(syscall(SYS_sigaltstack, BAD, NULL)));
  printf("sigaltstack bad old: %s\n", E(syscall(SYS_sigaltstack, NULL, BAD)));
  printf("sigaltstack NULL NULL: %s\n", E(syscall(SYS_sigaltstack, NULL, NULL)));

  // rt_sigpending.
  uint64_t pend = 0xdeadbeef;
  r = syscall(SYS_rt_sigpending, &pend, 8);
  printf("pending: %s set %#llx\n", E(r), (unsigned long long)pend);
  sigset_t lp;
  r = sigpending(&lp);
  printf("libc sigpending: %s empty %d\n", E(r), sigisemptyset(&lp));
  uint32_t half[2] = {0xdeadbeef, 0xdeadbeef};
  r = syscall(SYS_rt_sigpending, half, 4);
  printf("pending size 4: %s set %#x next %#x\n", E(r), half[0], half[1]);
  printf("pending size 16: %s\n", E(syscall(SYS_rt_sigpending, &pend, 16)));
  printf("pending bad pointer: %s\n", E(syscall(SYS_rt_sigpending, BAD, 8)));
  // A blocked signal waits; ignoring it discards it.
  set = bit(SIGUSR2);
  procmask(SIG_BLOCK, &set, NULL, 8);
  struct ksigaction dfl = {(uint64_t)SIG_DFL, 0, 0, 0};
  action(SIGUSR2, &dfl, NULL, 8);
  raise(SIGUSR2);
  syscall(SYS_rt_sigpending, &pend, 8);
  printf("pending after raise while blocked: %#llx\n", (unsigned long long)pend);
  struct ksigaction ign = {(uint64_t)SIG_IGN, 0, 0, 0};
  action(SIGUSR2, &ign, NULL, 8);
  syscall(SYS_rt_sigpending, &pend, 8);
  printf("pending after ignoring: %#llx\n", (unsigned long long)pend);
  procmask(SIG_UNBLOCK, &set, NULL, 8);
  action(SIGUSR2, &dfl, NULL, 8);
  printf("still running\n");
  return 0;
}
