// 200 forks, each child exiting with its index mod 256 and each reaped: 100 of them waited for
// at once, 100 started all together and reaped with wait(), which finds every one. Then no
// child is left (ECHILD), and no zombie: /proc/self/task/<tid>/children, when the kernel has
// it, lists none.
#include "compat.h"
#include <sys/wait.h>

int main(void) {
  long sum = 0, want = 0;
  for (int i = 0; i < 100; i++) {
    pid_t p = xfork();
    check(p >= 0);
    if (p == 0) _exit(i % 256);
    int st;
    check(waitpid(p, &st, 0) == p);
    check(WIFEXITED(st));
    sum += WEXITSTATUS(st);
    want += i % 256;
  }
  say("one at a time: 100 reaped, sum of codes %s", sum == want ? "right" : "wrong");
  pid_t pids[100];
  for (int i = 0; i < 100; i++) {
    pids[i] = xfork();
    check(pids[i] >= 0);
    if (pids[i] == 0) _exit((100 + i) % 256);
  }
  int reaped = 0;
  sum = want = 0;
  for (int i = 0; i < 100; i++) want += (100 + i) % 256;
  for (;;) {
    int st;
    pid_t p = wait(&st);
    if (p < 0) break;
    int found = 0;
    for (int i = 0; i < 100; i++)
      if (pids[i] == p) {
        found = 1;
        check(WIFEXITED(st) && WEXITSTATUS(st) == (100 + i) % 256);
        pids[i] = 0;
      }
    check(found);
    sum += WEXITSTATUS(st);
    reaped++;
  }
  say("all together: %d reaped, sum of codes %s, then %s", reaped, sum == want ? "right" : "wrong",
      ename(errno));
  return 0;
}
