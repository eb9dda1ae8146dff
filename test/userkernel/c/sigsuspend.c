// Waiting for signals: sigsuspend() swaps in a mask, returns EINTR after the handler of a
// signal a child sends, and puts the old mask back; rt_sigtimedwait (sigtimedwait) takes a
// blocked signal without a handler running, with the sender's siginfo (sigqueue's value), times
// out with EAGAIN when none comes, and returns at once for one already pending; sigwaitinfo
// blocks until a child's signal arrives.
#include "compat.h"
#include <signal.h>
#include <sys/wait.h>

static volatile sig_atomic_t handled;
static void handler(int sig) { handled = sig; }

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  check(sigaction(SIGUSR1, &sa, 0) == 0);
  check(sigaction(SIGUSR2, &sa, 0) == 0);
  sigset_t block, old, empty, now;
  sigemptyset(&empty);
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  check(sigprocmask(SIG_BLOCK, &block, &old) == 0);

  pid_t parent = getpid();
  pid_t p = xfork();
  if (p == 0) {
    kill(parent, SIGUSR1);
    _exit(0);
  }
  errno = 0;
  int r = sigsuspend(&empty);
  sigprocmask(SIG_BLOCK, 0, &now);
  say("sigsuspend: %d %s, handler saw %d, mask restored %s", r, ename(errno), (int)handled,
      sigismember(&now, SIGUSR1) && sigismember(&now, SIGUSR2) ? "yes" : "no");
  check(waitpid(p, 0, 0) == p);

  // A signal kept blocked through sigsuspend's own mask waits, and the other one wakes it.
  handled = 0;
  sigset_t only2;
  sigemptyset(&only2);
  sigaddset(&only2, SIGUSR2);
  p = xfork();
  if (p == 0) {
    kill(parent, SIGUSR2);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, 0);
    kill(parent, SIGUSR1);
    _exit(0);
  }
  errno = 0;
  r = sigsuspend(&only2);
  say("sigsuspend with SIGUSR2 still blocked: %d %s, handler saw %d", r, ename(errno), (int)handled);
  sigset_t pend;
  sigpending(&pend);
  say("SIGUSR2 still pending: %d", sigismember(&pend, SIGUSR2));
  check(waitpid(p, 0, 0) == p);
  siginfo_t si;
  r = sigwaitinfo(&only2, &si);
  say("sigwaitinfo takes the pending SIGUSR2: %d, code %s", r, si.si_code == SI_USER ? "SI_USER" : "other");

  // sigtimedwait on SIGRTMIN+3 (blocked, no handler).
  sigset_t rt;
  sigemptyset(&rt);
  sigaddset(&rt, SIGRTMIN + 3);
  check(sigprocmask(SIG_BLOCK, &rt, 0) == 0);
  struct timespec t50 = {0, 50 * 1000 * 1000};
  errno = 0;
  r = sigtimedwait(&rt, &si, &t50);
  say("sigtimedwait with nothing sent: %d %s", r, ename(errno));
  p = xfork();
  if (p == 0) {
    union sigval v = {.sival_int = 4321};
    sigqueue(parent, SIGRTMIN + 3, v);
    _exit(0);
  }
  struct timespec t10 = {10, 0};
  memset(&si, 0, sizeof si);
  r = sigtimedwait(&rt, &si, &t10);
  say("sigtimedwait for the child's sigqueue: signal RTMIN+%d, code %s, value %d, pid %s", r - SIGRTMIN,
      si.si_code == SI_QUEUE ? "SI_QUEUE" : "other", si.si_value.sival_int, si.si_pid == p ? "right" : "wrong");
  check(waitpid(p, 0, 0) == p);
  raise(SIGRTMIN + 3);
  struct timespec zero = {0, 0};
  r = sigtimedwait(&rt, &si, &zero);
  say("sigtimedwait, zero timeout, already pending: RTMIN+%d, code %d", r - SIGRTMIN, si.si_code);
  say("no handler ran for it: %s", handled == SIGUSR1 ? "yes" : "no");
  return 0;
}
