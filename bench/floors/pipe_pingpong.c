// A pipe ping-pong between two processes: the parent writes one byte into one pipe, the forked
// child reads it and writes it back through another, N times (N from argv[1]), timed from
// inside the parent; prints microseconds per round trip (two writes, two reads, two wake-ups).
// Exits 2 with a line on stderr if fork fails, so a kernel without fork is said, not timed.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000;
  int ping[2], pong[2];
  if (pipe(ping) || pipe(pong)) return perror("pipe"), 2;
  pid_t p = fork();
  if (p < 0) return perror("fork"), 2;
  char c = 'x';
  if (p == 0) {
    for (long i = 0; i < n; i++)
      if (read(ping[0], &c, 1) != 1 || write(pong[1], &c, 1) != 1) _exit(3);
    _exit(0);
  }
  double t0 = now_us();
  for (long i = 0; i < n; i++)
    if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) return perror("ping"), 2;
  double t1 = now_us();
  int st;
  if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return fprintf(stderr, "child failed\n"), 2;
  printf("%.3f\n", (t1 - t0) / n);
  return 0;
}
