// Computes for `argv[1]` ms of its own CPU time without a system call, says so, then waits
// for stdin to end: the test measures the process while it waits.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long ms = argc > 1 ? atol(argv[1]) : 200;
  struct timespec a, b;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
  volatile unsigned long x = 0;
  for (;;) {
    for (int i = 0; i < 10000000; i++) x += i;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    if ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 >= ms) break;
  }
  printf("spun\n");
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  return 0;
}
