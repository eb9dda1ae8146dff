// kill(2) to a process group: three children join one group (setpgid, by themselves and by the
// parent, as shells do), a fourth stays in the parent's; kill(-pgid, SIGTERM) reaches exactly
// the three, whose handlers exit with their own codes. getpgid/getpgrp/getsid say who is where;
// killpg with signal 0 checks a group exists; a group with no members is ESRCH.
#include "compat.h"
#include <signal.h>
#include <sys/wait.h>

static int me;
static void on_term(int sig) {
  (void)sig;
  _exit(20 + me);
}

int main(void) {
  int ready[2];
  check(pipe(ready) == 0);
  pid_t kids[4];
  pid_t pgid = 0;
  say("parent: own group %s, session %s", getpgrp() == getpgid(0) ? "consistent" : "wrong",
      getsid(0) == getsid(getpid()) ? "consistent" : "wrong");
  for (int i = 0; i < 4; i++) {
    pid_t p = xfork();
    check(p >= 0);
    if (p == 0) {
      me = i;
      signal(SIGTERM, on_term);
      if (i < 3) setpgid(0, pgid);
      char c = 'r';
      check(write(ready[1], &c, 1) == 1);
      for (;;) pause();
    }
    if (i < 3) {
      setpgid(p, pgid);
      if (i == 0) pgid = p;
    }
    kids[i] = p;
  }
  for (int i = 0; i < 4; i++) {
    char c;
    check(read(ready[0], &c, 1) == 1);
  }
  for (int i = 0; i < 4; i++)
    say("child %d: group %s", i, getpgid(kids[i]) == pgid ? "the new one" : getpgid(kids[i]) == getpgrp() ? "the parent's" : "other");
  say("killpg(pgid, 0): %d", killpg(pgid, 0));
  check(kill(-pgid, SIGTERM) == 0);
  for (int i = 0; i < 3; i++) {
    int st;
    check(waitpid(kids[i], &st, 0) == kids[i]);
    say("child %d: exited %d", i, WEXITSTATUS(st));
  }
  int st;
  say("child 3 untouched: %s", waitpid(kids[3], &st, WNOHANG) == 0 ? "yes" : "no");
  errno = 0;
  int r = kill(-pgid, 0);
  say("kill(-pgid, 0) once the group is empty: %d %s", r, ename(errno));
  check(kill(kids[3], SIGKILL) == 0);
  check(waitpid(kids[3], &st, 0) == kids[3]);
  say("child 3: killed by %d", WTERMSIG(st));
  return 0;
}
