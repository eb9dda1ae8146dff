// Reads FILE to its end REPS times (1 MiB per read call) and prints, per pass, the
// milliseconds from open to close, the bytes read and the TSC ticks the pass took. Timed
// from inside, so the sandbox's start-up is not counted. The same static binary runs
// natively, under runc, in moat's userkernel (where its clock_gettime calls are served by
// moat's kernel from the host's monotonic clock) and in the vm guest (where the ticks are
// the figure to trust, see tsc_khz.c). Usage: read_timed FILE [REPS]
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#define CHUNK (1 << 20)

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 2) return fprintf(stderr, "usage: read_timed FILE [REPS]\n"), 2;
  long reps = argc > 2 ? atol(argv[2]) : 1;
  static char buf[CHUNK];
  for (long r = 0; r < reps; r++) {
    double t0 = now_ms();
    unsigned long long c0 = __rdtsc();
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return perror(argv[1]), 1;
    long long total = 0;
    for (;;) {
      ssize_t n = read(fd, buf, CHUNK);
      if (n < 0) return perror("read"), 1;
      if (n == 0) break;
      total += n;
    }
    close(fd);
    unsigned long long c1 = __rdtsc();
    double t1 = now_ms();
    // The byte count proves the whole file was read; the harness checks it.
    printf("%.4f %lld %llu\n", t1 - t0, total, c1 - c0);
    fflush(stdout);
  }
  return 0;
}
