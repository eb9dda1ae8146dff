// Orphans and sessions: with PR_SET_CHILD_SUBREAPER this process inherits a grandchild whose
// parent has exited (getppid in the grandchild becomes this process, which reaps it with
// wait); setsid makes a child the leader of a new session and group (getsid, getpgrp = its
// pid); setsid by a group leader is EPERM; setpgid of a child into a group of another session
// is EPERM. PR_SET_PDEATHSIG: a child asked to get SIGTERM when its parent dies gets it.
#include "compat.h"
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

int main(void) {
  check(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  int sub = -1;
  prctl(PR_GET_CHILD_SUBREAPER, &sub);
  say("subreaper flag: %d", sub);
  pid_t me = getpid();
  int rep[2];
  check(pipe(rep) == 0);
  pid_t mid = xfork();
  if (mid == 0) {
    pid_t g = xfork();
    if (g == 0) {
      // Wait until the middle process has gone, then say who the parent is now.
      while (getppid() != me) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, 0);
      }
      char c = 'y';
      check(write(rep[1], &c, 1) == 1);
      _exit(12);
    }
    _exit(11);
  }
  int st;
  check(waitpid(mid, &st, 0) == mid);
  say("middle exited %d", WEXITSTATUS(st));
  char c;
  check(read(rep[0], &c, 1) == 1);
  say("the orphaned grandchild's parent is now this process: %c", c);
  pid_t g = wait(&st);
  say("and this process reaps it: %s, exited %d", g > 0 ? "yes" : ename(errno), WEXITSTATUS(st));

  pid_t p = xfork();
  if (p == 0) {
    pid_t s = setsid();
    int ok = s == getpid() && getsid(0) == getpid() && getpgrp() == getpid();
    errno = 0;
    int again = setsid();
    _exit(ok && again == -1 && errno == EPERM ? 0 : 1);
  }
  check(waitpid(p, &st, 0) == p);
  say("setsid in a child: a new session and group led by it, and a second setsid EPERM: %s",
      WEXITSTATUS(st) == 0 ? "yes" : "no");

  int go[2];
  check(pipe(go) == 0);
  p = xfork();
  if (p == 0) {
    setsid();
    close(go[1]);
    check(read(go[0], &c, 1) == 0);
    _exit(0);
  }
  close(go[0]);
  // Wait until the child is in its own session, then try to move it.
  while (getsid(p) != p) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, 0);
  }
  errno = 0;
  int r = setpgid(p, getpgrp());
  say("setpgid of a child in another session: %d %s", r, ename(errno));
  close(go[1]);
  check(waitpid(p, &st, 0) == p);

  // PR_SET_PDEATHSIG: the middle process exits; its child gets SIGTERM and dies of it.
  int ready[2];
  check(pipe(ready) == 0);
  mid = xfork();
  if (mid == 0) {
    pid_t k = xfork();
    if (k == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      c = 'k';
      check(write(ready[1], &c, 1) == 1);
      for (;;) pause();
    }
    check(read(ready[0], &c, 1) == 1);
    _exit(0);
  }
  check(waitpid(mid, &st, 0) == mid);
  pid_t k = wait(&st);
  say("PR_SET_PDEATHSIG child, reaped by the subreaper: %s, killed by signal %d", k > 0 ? "yes" : ename(errno),
      WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return 0;
}
