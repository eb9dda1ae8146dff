// sigaltstack with handlers on it: an SA_ONSTACK handler runs inside the alternate stack and
// sigaltstack() there says SS_ONSTACK (and refuses a change with EPERM); a handler without
// SA_ONSTACK stays on the normal stack; a stack overflow's SIGSEGV, which cannot run on the
// overflowed stack, runs on the alternate one and siglongjmps out, and the program goes on.
#include "compat.h"
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>

#define ALT (64 * 1024)
static char *alt;
static volatile int on_alt, flags_onstack, eperm;
static sigjmp_buf back;

static void where(int sig) {
  (void)sig;
  char local;
  on_alt = (uintptr_t)&local >= (uintptr_t)alt && (uintptr_t)&local < (uintptr_t)alt + ALT;
  stack_t now;
  sigaltstack(0, &now);
  flags_onstack = (now.ss_flags & SS_ONSTACK) != 0;
  stack_t other = {.ss_sp = alt, .ss_size = ALT, .ss_flags = 0};
  eperm = sigaltstack(&other, 0) == -1 && errno == EPERM;
}

static void on_segv(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
  char local;
  on_alt = (uintptr_t)&local >= (uintptr_t)alt && (uintptr_t)&local < (uintptr_t)alt + ALT;
  siglongjmp(back, 1);
}

static volatile long depth;
static long recurse(long n) {
  volatile char pad[1024];
  if (n < 0) return 0;
  pad[0] = (char)n;
  depth = n;
  return recurse(n + 1) + pad[0];
}

int main(void) {
  alt = malloc(ALT);
  check(alt != 0);
  stack_t ss = {.ss_sp = alt, .ss_size = ALT, .ss_flags = 0}, got;
  check(sigaltstack(&ss, 0) == 0);
  check(sigaltstack(0, &got) == 0);
  say("installed: size %s, flags %d", got.ss_size == ALT && got.ss_sp == alt ? "right" : "wrong", got.ss_flags);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = where;
  sa.sa_flags = SA_ONSTACK;
  check(sigaction(SIGUSR1, &sa, 0) == 0);
  sa.sa_flags = 0;
  check(sigaction(SIGUSR2, &sa, 0) == 0);
  raise(SIGUSR1);
  say("SA_ONSTACK handler: on the alternate stack %d, SS_ONSTACK %d, change refused with EPERM %d", on_alt,
      flags_onstack, eperm);
  raise(SIGUSR2);
  say("handler without SA_ONSTACK: on the alternate stack %d, SS_ONSTACK %d", on_alt, flags_onstack);

  // Overflow a 1 MiB stack.
  struct rlimit rl = {1 << 20, 1 << 20};
  check(setrlimit(RLIMIT_STACK, &rl) == 0);
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_ONSTACK | SA_SIGINFO;
  check(sigaction(SIGSEGV, &sa, 0) == 0);
  on_alt = 0;
  if (sigsetjmp(back, 1) == 0) {
    recurse(0);
    say("not reached");
  }
  say("stack overflow caught: on the alternate stack %d, went deep %s", on_alt, depth > 100 ? "yes" : "no");
  sigset_t now;
  sigprocmask(SIG_BLOCK, 0, &now);
  say("after siglongjmp SIGSEGV is unblocked again: %d", !sigismember(&now, SIGSEGV));

  stack_t off = {.ss_flags = SS_DISABLE};
  check(sigaltstack(&off, 0) == 0);
  sigaltstack(0, &got);
  say("disabled: flags %s", got.ss_flags == SS_DISABLE ? "SS_DISABLE" : "other");
  return 0;
}
