// A futex ping-pong between two threads of one process: each waits (FUTEX_WAIT, raw system
// call) until a shared word holds its turn, then hands the turn over and wakes the other
// (FUTEX_WAKE), N times (N from argv[1]); timed from inside, prints microseconds per round
// trip (two hand-overs). Exits 2 with a line on stderr if the thread cannot be made.
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static _Atomic uint32_t turn;
static long n;

static void wait_for(uint32_t want) {
  uint32_t v;
  while ((v = atomic_load(&turn)) != want) syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, v, 0, 0, 0);
}

static void hand_to(uint32_t next) {
  atomic_store(&turn, next);
  syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
}

static void *other(void *arg) {
  (void)arg;
  for (long i = 0; i < n; i++) {
    wait_for(1);
    hand_to(0);
  }
  return 0;
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  n = argc > 1 ? atol(argv[1]) : 10000;
  pthread_t t;
  if (pthread_create(&t, 0, other, 0)) return fprintf(stderr, "pthread_create failed\n"), 2;
  double t0 = now_us();
  for (long i = 0; i < n; i++) {
    hand_to(1);
    wait_for(0);
  }
  double t1 = now_us();
  pthread_join(t, 0);
  printf("%.3f\n", (t1 - t0) / n);
  return 0;
}
