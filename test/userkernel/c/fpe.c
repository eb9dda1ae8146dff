// SIGFPE from integer division by zero (FPE_INTDIV) and from INT_MIN / -1, caught by an
// SA_SIGINFO handler that siglongjmps out; and a handler that instead returns after moving the
// saved instruction pointer past the faulting idiv (the ucontext it edits is what rt_sigreturn
// puts back), so the program resumes after it with the registers the handler set.
#include "compat.h"
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <ucontext.h>

static sigjmp_buf back;
static volatile int got_code;

static void jump(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  got_code = si->si_code;
  siglongjmp(back, 1);
}

extern char after_idiv[];
static void skip(int sig, siginfo_t *si, void *ucv) {
  (void)sig;
  ucontext_t *uc = ucv;
  got_code = si->si_code;
  uc->uc_mcontext.gregs[REG_RIP] = (greg_t)after_idiv;
  uc->uc_mcontext.gregs[REG_RAX] = 4242;
}

static volatile int zero = 0, minus1 = -1, big = INT_MIN;

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = jump;
  sa.sa_flags = SA_SIGINFO;
  check(sigaction(SIGFPE, &sa, 0) == 0);
  if (sigsetjmp(back, 1) == 0) {
    say("no fault %d", 7 / zero);
  } else
    say("7 / 0: SIGFPE, %s", got_code == FPE_INTDIV ? "FPE_INTDIV" : "other");
  if (sigsetjmp(back, 1) == 0) {
    say("no fault %d", big / minus1);
  } else
    say("INT_MIN / -1: SIGFPE, code %d", got_code);

  sa.sa_sigaction = skip;
  check(sigaction(SIGFPE, &sa, 0) == 0);
  long result;
  __asm__ volatile(
      "mov $1, %%eax\n"
      "cltd\n"
      "idivl %1\n"
      ".globl after_idiv\n"
      "after_idiv:\n"
      : "=a"(result)
      : "m"(zero)
      : "edx");
  say("resumed after the idiv with eax %ld set by the handler, code %s", result,
      got_code == FPE_INTDIV ? "FPE_INTDIV" : "other");
  return 0;
}
