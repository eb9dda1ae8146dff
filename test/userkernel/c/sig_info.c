// SA_SIGINFO handlers and the siginfo_t the kernel fills: kill() gives SI_USER with the
// sender's pid and uid, raise() (tgkill) SI_TKILL, sigqueue() SI_QUEUE with its value, a
// child's exit a SIGCHLD with CLD_EXITED, its status and pid; the ucontext argument is there
// and its saved mask holds the handled signal's own bit.
#include "compat.h"
#include <signal.h>
#include <sys/wait.h>
#include <ucontext.h>

static volatile sig_atomic_t got;
static siginfo_t last;
static int ctx_ok;

static void handler(int sig, siginfo_t *si, void *uc) {
  got = sig;
  last = *si;
  sigset_t cur;
  sigprocmask(SIG_BLOCK, 0, &cur);
  // Inside the handler the signal itself is blocked; the ucontext's mask is the one before.
  ctx_ok = uc != 0 && sigismember(&cur, sig) && !sigismember(&((ucontext_t *)uc)->uc_sigmask, sig);
}

static const char *code(int c) {
  switch (c) {
    case SI_USER: return "SI_USER";
    case SI_TKILL: return "SI_TKILL";
    case SI_QUEUE: return "SI_QUEUE";
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    default: return "other";
  }
}

static void report(const char *what, pid_t pid) {
  say("%s: handler got %d, si_signo %d, si_code %s, si_pid %s, si_uid %s, context %s", what, (int)got,
      last.si_signo, code(last.si_code), last.si_pid == pid ? "right" : "wrong",
      last.si_uid == getuid() ? "right" : "wrong", ctx_ok ? "right" : "wrong");
  got = 0;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  check(sigaction(SIGUSR1, &sa, 0) == 0);
  check(sigaction(SIGRTMIN + 1, &sa, 0) == 0);
  check(sigaction(SIGCHLD, &sa, 0) == 0);

  check(kill(getpid(), SIGUSR1) == 0);
  report("kill", getpid());
  check(raise(SIGUSR1) == 0);
  report("raise", getpid());
  union sigval v = {.sival_int = 1234};
  check(sigqueue(getpid(), SIGRTMIN + 1, v) == 0);
  say("sigqueue value %d", last.si_value.sival_int);
  report("sigqueue", getpid());

  // A child's exit: block SIGCHLD until it is a zombie, so the handler runs at the unblock.
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  pid_t p = xfork();
  if (p == 0) _exit(6);
  siginfo_t wi;
  check(waitid(P_PID, p, &wi, WEXITED | WNOWAIT) == 0);
  sigprocmask(SIG_SETMASK, &old, 0);
  say("SIGCHLD: handler got %d, si_code %s, si_status %d, si_pid %s", (int)got, code(last.si_code),
      last.si_status, last.si_pid == p ? "right" : "wrong");
  check(waitpid(p, 0, 0) == p);
  return 0;
}
