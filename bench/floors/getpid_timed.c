// N raw getpid system calls (N from argv[1]), timed from inside: prints, one line per pass
// (REPS passes from argv[2], default 1), microseconds per call and the TSC ticks the pass
// took. The same static binary runs natively, under moat's userkernel (where its
// clock_gettime calls are served by moat's kernel from the host's monotonic clock) and in
// the vm guest (all passes in one boot; there the ticks are the figure to trust, see
// tsc_khz.c).
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  long reps = argc > 2 ? atol(argv[2]) : 1;
  long acc = 0;
  for (long r = 0; r < reps; r++) {
    double t0 = now_us();
    unsigned long long c0 = __rdtsc();
    for (long i = 0; i < n; i++) acc += syscall(SYS_getpid);
    unsigned long long c1 = __rdtsc();
    double t1 = now_us();
    printf("%.4f %llu\n", (t1 - t0) / n, c1 - c0);
    fflush(stdout);
  }
  return acc < 0;
}
