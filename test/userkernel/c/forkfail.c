// What a program sees when fork cannot get a new process: -1 and EAGAIN, and it goes on.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  pid_t c = fork();
  if (c == 0) _exit(0);
  if (c < 0) {
    printf("fork failed: %s\n", strerror(errno));
    return 0;
  }
  waitpid(c, NULL, 0);
  printf("fork worked\n");
  return 0;
}
