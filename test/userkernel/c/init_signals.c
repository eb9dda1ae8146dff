// PID 1 of a pid namespace (run natively under `unshare -pf`): Linux ignores every signal it
// has no handler for, SIGKILL from inside included; a handler still runs; a blocked signal
// stays pending and is discarded when unblocked with no handler; its children die as usual.
// (A fault with no handler still ends the init: exit-status.test.ts runs one as a container's.)
#include "compat.h"
#include <signal.h>
#include <sys/wait.h>

static volatile int got;
static void on(int s) { got = s; }

int main(void) {
  say("pid %d", getpid());
  say("raise TERM: %d, alive", raise(SIGTERM));
  say("kill(1, KILL) from inside: %d, alive", kill(1, SIGKILL));
  say("raise USR1 (default terminate): %d, alive", raise(SIGUSR1));
  signal(SIGUSR2, on);
  raise(SIGUSR2);
  say("handler ran for %d", got);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigprocmask(SIG_BLOCK, &s, NULL);
  raise(SIGINT);
  sigset_t p;
  sigpending(&p);
  say("blocked INT pending: %d", sigismember(&p, SIGINT));
  sigprocmask(SIG_UNBLOCK, &s, NULL);
  sigpending(&p);
  say("unblocked: discarded, pending %d, alive", sigismember(&p, SIGINT));
  pid_t c = fork();
  if (c == 0) {
    pause();
    _exit(0);
  }
  kill(c, SIGTERM);
  int st;
  check(waitpid(c, &st, 0) == c);
  say("child killed by %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
  c = fork();
  if (c == 0) {
    // A child of init is no init: its own raise kills it.
    raise(SIGTERM);
    _exit(0);
  }
  check(waitpid(c, &st, 0) == c);
  say("child's raise killed it: %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
  return 0;
}
