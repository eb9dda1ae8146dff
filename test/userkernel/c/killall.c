// kill(-1, sig) from a container's PID 1 (the test runs it natively in a PID namespace of its
// own): every process but the sender gets the signal, grandchildren too. The sender is left
// alone; kill(-1, 0) says there is someone to signal; once all are gone it is ESRCH.
#include "compat.h"
#include <signal.h>
#include <sys/wait.h>

static int me;
static void on_usr1(int sig) {
  (void)sig;
  _exit(30 + me);
}

int main(void) {
  if (getpid() != 1) {
    say("not PID 1 in its namespace: kill(-1) would reach the whole host");
    return 2;
  }
  signal(SIGUSR1, SIG_IGN);
  int ready[2];
  check(pipe(ready) == 0);
  pid_t kids[3];
  for (int i = 0; i < 3; i++) {
    pid_t p = xfork();
    check(p >= 0);
    if (p == 0) {
      me = i;
      signal(SIGUSR1, on_usr1);
      if (i == 2) {
        // A grandchild, which reports through the child's status.
        pid_t g = xfork();
        if (g == 0) {
          me = 5;
          char c = 'g';
          check(write(ready[1], &c, 1) == 1);
          for (;;) pause();
        }
        signal(SIGUSR1, SIG_IGN);
        char c = 'r';
        check(write(ready[1], &c, 1) == 1);
        int st;
        while (waitpid(g, &st, 0) != g) {
        }
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 99);
      }
      char c = 'r';
      check(write(ready[1], &c, 1) == 1);
      for (;;) pause();
    }
    kids[i] = p;
  }
  for (int i = 0; i < 4; i++) {
    char c;
    check(read(ready[0], &c, 1) == 1);
  }
  say("kill(-1, 0): %d", kill(-1, 0));
  say("kill(-1, SIGUSR1): %d", kill(-1, SIGUSR1));
  for (int i = 0; i < 3; i++) {
    int st;
    check(waitpid(kids[i], &st, 0) == kids[i]);
    say("child %d: exited %d", i, WEXITSTATUS(st));
  }
  errno = 0;
  int r = kill(-1, 0);
  say("kill(-1, 0) alone: %d %s", r, ename(errno));
  return 0;
}
