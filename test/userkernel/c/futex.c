// futex(2) through the raw system call between two threads: FUTEX_WAIT blocks until a
// FUTEX_WAKE from the other thread (which says it woke one), EAGAIN when the word is not the
// expected value, ETIMEDOUT after a relative timeout, FUTEX_WAIT_BITSET with an absolute
// CLOCK_MONOTONIC deadline, FUTEX_WAKE_BITSET that misses a waiter of another bitset, and
// FUTEX_CMP_REQUEUE moving two waiters to a second word (nothing woken) before one wake takes
// both. A waiter is known to be waiting when a requeue with nr_wake 0 finds it: no sleeps.
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include "compat.h"

static long futex(uint32_t *w, int op, uint32_t val, const struct timespec *ts, uint32_t *w2, uint32_t val3) {
  return syscall(SYS_futex, w, op, val, ts, w2, val3);
}

static uint32_t word, other, parking;
static long results[4];

static void *waiter(void *arg) {
  long i = (long)arg;
  errno = 0;
  long r = futex(&word, FUTEX_WAIT_PRIVATE, 0, 0, 0, 0);
  results[i] = r == 0 ? 0 : -errno;
  return 0;
}

static void *bitset_waiter(void *arg) {
  (void)arg;
  long r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, 0, 0, 0x2);
  results[0] = r == 0 ? 0 : -errno;
  return 0;
}

/** Wait until `n` threads wait on `word`, by moving them to `parking` and back. */
static void until_waiting(uint32_t *w, int n) {
  int moved = 0;
  while (moved < n) {
    long r = futex(w, FUTEX_CMP_REQUEUE_PRIVATE, 0, (const struct timespec *)(uintptr_t)INT_MAX, &parking, *w);
    check(r >= 0);
    moved += (int)r;
    if (moved < n) sched_yield();
  }
  // Back where they were: requeue everything from parking to w.
  long back = futex(&parking, FUTEX_CMP_REQUEUE_PRIVATE, 0, (const struct timespec *)(uintptr_t)INT_MAX, w, parking);
  check(back == n);
}

int main(void) {
  errno = 0;
  long r = futex(&word, FUTEX_WAIT_PRIVATE, 1, 0, 0, 0);
  say("WAIT with the wrong value: %ld %s", r, ename(errno));
  struct timespec t20 = {0, 20 * 1000 * 1000};
  errno = 0;
  r = futex(&word, FUTEX_WAIT_PRIVATE, 0, &t20, 0, 0);
  say("WAIT with a 20 ms timeout: %ld %s", r, ename(errno));
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  now.tv_nsec += 20 * 1000 * 1000;
  if (now.tv_nsec >= 1000000000) now.tv_sec++, now.tv_nsec -= 1000000000;
  errno = 0;
  r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, &now, 0, FUTEX_BITSET_MATCH_ANY);
  say("WAIT_BITSET with an absolute deadline: %ld %s", r, ename(errno));
  say("WAKE with nobody waiting: %ld", futex(&word, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0));

  pthread_t t;
  check(pthread_create(&t, 0, waiter, (void *)0) == 0);
  until_waiting(&word, 1);
  say("WAKE of the waiting thread: %ld", futex(&word, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0));
  pthread_join(t, 0);
  say("its WAIT returned %ld", results[0]);

  check(pthread_create(&t, 0, bitset_waiter, 0) == 0);
  until_waiting(&word, 1);
  say("WAKE_BITSET 0x1 of a waiter on 0x2: %ld", futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, 0, 0, 0x1));
  say("WAKE_BITSET 0x2: %ld", futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, 0, 0, 0x2));
  pthread_join(t, 0);
  say("its WAIT_BITSET returned %ld", results[0]);

  pthread_t a, b;
  check(pthread_create(&a, 0, waiter, (void *)1) == 0);
  check(pthread_create(&b, 0, waiter, (void *)2) == 0);
  until_waiting(&word, 2);
  errno = 0;
  r = futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 0, (const struct timespec *)(uintptr_t)1, &other, 5);
  say("CMP_REQUEUE with a stale value: %ld %s", r, ename(errno));
  r = futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 0, (const struct timespec *)(uintptr_t)2, &other, 0);
  say("CMP_REQUEUE of both to another word, waking none: %ld", r);
  say("WAKE on the first word now: %ld", futex(&word, FUTEX_WAKE_PRIVATE, INT_MAX, 0, 0, 0));
  say("WAKE on the other word: %ld", futex(&other, FUTEX_WAKE_PRIVATE, INT_MAX, 0, 0, 0));
  pthread_join(a, 0);
  pthread_join(b, 0);
  say("their WAITs returned %ld %ld", results[1], results[2]);
  return 0;
}
