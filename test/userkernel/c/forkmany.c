// 200 forks, each child reaped before the next: every exit code comes back, and afterwards
// nothing is left to wait for (no zombie). Then 20 children alive at once, reaped in any order.
#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  int sum = 0;
  for (int i = 0; i < 200; i++) {
    pid_t c = fork();
    if (c < 0) {
      perror("fork");
      return 1;
    }
    if (c == 0) _exit(i & 0x7f);
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st)) {
      perror("waitpid");
      return 1;
    }
    sum += WEXITSTATUS(st);
  }
  printf("200 forks reaped, codes sum to %d\n", sum);
  int st;
  int r = wait(&st);
  printf("then wait: %d (%s)\n", r, r < 0 && errno == ECHILD ? "ECHILD" : "?");
  pid_t kids[20];
  for (int i = 0; i < 20; i++)
    if ((kids[i] = fork()) == 0) _exit(1);
  int n = 0;
  while (wait(&st) > 0) n += WEXITSTATUS(st);
  printf("20 at once, reaped %d\n", n);
  return 0;
}
