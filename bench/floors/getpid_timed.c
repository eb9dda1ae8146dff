// N raw getpid system calls (N from argv[1]), timed from inside: prints microseconds per
// call. The same static binary runs natively and under moat's userkernel (where its two
// clock_gettime calls are served by moat's kernel from the host's monotonic clock).
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  long acc = 0;
  double t0 = now_us();
  for (long i = 0; i < n; i++) acc += syscall(SYS_getpid);
  double t1 = now_us();
  printf("%.4f\n", (t1 - t0) / n);
  return acc < 0;
}
