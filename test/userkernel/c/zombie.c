// A child that exited and is not yet reaped is a zombie that keeps its pid: kill(pid, 0),
// getpgid and getsid still find it, a wait for stops alone does not (ECHILD); once waited
// for, its pid names nothing (ESRCH). A child
// of a parent that ignores SIGCHLD is reaped at once and leaves nothing.
#include "compat.h"
#include <signal.h>
#include <sys/wait.h>

static int err(long r) { return r < 0 ? errno : 0; }

int main(void) {
  pid_t c = fork();
  if (c == 0) _exit(4);
  // Let it end: a WNOWAIT peek waits for the exit and leaves the zombie.
  siginfo_t si;
  check(waitid(P_PID, c, &si, WEXITED | WNOWAIT) == 0);
  say("zombie: kill 0 %s, getpgid same %d, getsid same %d", ename(err(kill(c, 0))), getpgid(c) == getpgrp(),
      getsid(c) == getsid(0));
  say("a signal to it: %s", ename(err(kill(c, SIGTERM))));
  // A zombie can only report its end: a wait for stops alone has no child to wait for.
  say("waitid for stops with only a zombie: %s", ename(err(waitid(P_ALL, 0, &si, WSTOPPED))));
  int st;
  check(waitpid(c, &st, 0) == c);
  const char *k = ename(err(kill(c, 0)));
  say("reaped with %d; then kill 0 %s", WEXITSTATUS(st), k);
  say("getpgid %s", ename(err(getpgid(c))));
  signal(SIGCHLD, SIG_IGN);
  c = fork();
  if (c == 0) _exit(0);
  int r = waitpid(c, &st, 0);
  const char *waited = r < 0 ? ename(errno) : "found it";
  say("SIGCHLD ignored: wait %s, then kill 0 %s", waited, ename(err(kill(c, 0))));
  return 0;
}
