// A child that computes for a while: its parent's wait4 reports the child's CPU time in the
// rusage it fills (a coarse check, so that native and userkernel runs print the same).
#include <stdio.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  pid_t c = fork();
  if (c == 0) {
    // Computation alone, no system call: all of it is the child's own CPU time.
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 1000000000UL; i++) x += i;
    _exit(0);
  }
  int st;
  struct rusage ru;
  if (wait4(c, &st, 0, &ru) != c) {
    perror("wait4");
    return 1;
  }
  double used = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  printf("child exited %d, its rusage shows at least 0.1 s: %d\n", WEXITSTATUS(st), used >= 0.1);
  return 0;
}
