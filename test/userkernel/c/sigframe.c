#define _GNU_SOURCE
// The x86-64 signal frame as a handler sees it, field by field (ucontext, sigcontext's
// registers, the FP state with its xsave magics, siginfo, the return address), and what
// rt_sigreturn puts back from it (registers and FP state a handler edits, the mask). Prints
// facts only (no addresses), so the native and userkernel runs compare line by line.
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U

static volatile int seen;
static char line[4096];

static void add(const char *fmt, unsigned long long v) {
  size_t n = strlen(line);
  snprintf(line + n, sizeof line - n, fmt, v);
}

extern char fault_at[], fault_after[];

static void on_ill(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = ucv;
  mcontext_t *mc = &uc->uc_mcontext;
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
  line[0] = 0;
  add("sig %llu", sig);
  add(" rbp-mod16 %llu", fp % 16); // rsp = 8 (mod 16) at entry, then push rbp
  add(" uc_flags %llu", uc->uc_flags);
  add(" uc_link-null %llu", uc->uc_link == 0);
  add(" info-at-uc+304 %llu", (char *)si - (char *)uc == 304);
  add(" si_code %llu", (unsigned)si->si_code);
  add(" rip-at-ud2 %llu", mc->gregs[REG_RIP] == (greg_t)fault_at);
  add(" r12 %llx", mc->gregs[REG_R12]);
  add(" r13 %llx", mc->gregs[REG_R13]);
  add(" r8 %llx", mc->gregs[REG_R8]);
  add(" r15 %llx", mc->gregs[REG_R15]);
  add(" trapno %llu", mc->gregs[REG_TRAPNO]);
  add(" red-zone-skipped %llu", (uintptr_t)mc->gregs[REG_RSP] - ((uintptr_t)uc - 8) >= 128);
  add(" oldmask-usr2 %llu", (mc->gregs[REG_OLDMASK] >> (SIGUSR2 - 1)) & 1);
  add(" uc_sigmask-usr2 %llu", sigismember(&uc->uc_sigmask, SIGUSR2));
  sigset_t now;
  sigprocmask(SIG_BLOCK, 0, &now);
  add(" blocked-ill %llu", sigismember(&now, SIGILL));
  add(" blocked-usr1-from-sa_mask %llu", sigismember(&now, SIGUSR1));
  unsigned char *x = (unsigned char *)mc->fpregs;
  add(" fpregs-aligned64 %llu", ((uintptr_t)x & 63) == 0);
  add(" fpregs-above-frame %llu", (uintptr_t)x > (uintptr_t)si);
  uint32_t magic1, xsize;
  memcpy(&magic1, x + 464, 4);
  memcpy(&xsize, x + 480, 4);
  add(" magic1 %llu", magic1 == FP_XSTATE_MAGIC1);
  if (magic1 == FP_XSTATE_MAGIC1) {
    uint32_t magic2, ext;
    memcpy(&magic2, x + xsize, 4);
    memcpy(&ext, x + 468, 4);
    add(" magic2 %llu", magic2 == FP_XSTATE_MAGIC2);
    add(" extended-size %llu", ext == xsize + 4);
  }
  add(" xmm0 %llx", *(unsigned long long *)mc->fpregs->_xmm[0].element);
  add(" saved-mxcsr %llx", mc->fpregs->mxcsr);
  unsigned int mx;
  __asm__ volatile("stmxcsr %0" : "=m"(mx));
  add(" handler-mxcsr %llx", mx);
  void *ret = *(void **)((char *)uc - 8);
  struct {
    void *h;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
  } k;
  syscall(SYS_rt_sigaction, SIGILL, 0, &k, 8);
  add(" pretcode-is-restorer %llu", ret == k.restorer && (k.flags & 0x04000000));
  // What rt_sigreturn must put back: a register, an xmm register, the resume address.
  mc->gregs[REG_RIP] = (greg_t)fault_after;
  mc->gregs[REG_RBX] = 0x5151;
  memset(mc->fpregs->_xmm[1].element, 0x77, 16);
  seen = 1;
}

int main(void) {
  setvbuf(stdout, 0, _IONBF, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_ill;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR1);
  sigaction(SIGILL, &sa, 0);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigprocmask(SIG_BLOCK, &usr2, 0);

  unsigned long long rbx = 0, xmm1 = 0;
  unsigned int mx = 0x1f80 | 0x6000, mxafter = 0;
  static const unsigned long long pattern[2] = {0x1122334455667788ULL, 0};
  __asm__ volatile(
      "ldmxcsr %[mx]\n"
      "movdqu %[pat], %%xmm0\n"
      "pxor %%xmm1, %%xmm1\n"
      "mov $0x1234, %%r12\n"
      "mov $0xabcd, %%r13\n"
      "mov $0x8888, %%r8\n"
      "mov $0xf15f, %%r15\n"
      "xor %%ebx, %%ebx\n"
      ".globl fault_at\n"
      "fault_at: ud2\n"
      ".globl fault_after\n"
      "fault_after:\n"
      "mov %%rbx, %[rbx]\n"
      "movq %%xmm1, %[xmm1]\n"
      "stmxcsr %[mxafter]\n"
      : [rbx] "=m"(rbx), [xmm1] "=m"(xmm1), [mxafter] "=m"(mxafter)
      : [mx] "m"(mx), [pat] "m"(pattern)
      : "rbx", "r12", "r13", "r8", "r15", "xmm0", "xmm1", "memory");
  unsigned int dflt = 0x1f80;
  __asm__ volatile("ldmxcsr %0" ::"m"(dflt));
  printf("%s\n", line);
  printf("handler ran %d; after rt_sigreturn: rbx %llx, xmm1 %llx, mxcsr %x\n", seen, rbx, xmm1, mxafter);
  sigset_t now;
  sigprocmask(SIG_BLOCK, 0, &now);
  printf("mask after: usr2 %d ill %d usr1 %d\n", sigismember(&now, SIGUSR2), sigismember(&now, SIGILL),
         sigismember(&now, SIGUSR1));
  return 0;
}
