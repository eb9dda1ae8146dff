// pthreads with 8 threads: each sums its share of 1..8000000 into a shared total under a
// mutex; a barrier lines them up before they start; a condition variable tells the main thread
// when the last one has added its share; each returns its partial sum through pthread_join.
// Also: pthread_once, thread-specific data with its destructor, per-thread errno and gettid.
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include "compat.h"

#define THREADS 8
#define N 8000000L

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t bar;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static long total, done, once_runs, destructed, serial;
static pid_t tids[THREADS];

static void init_once(void) { once_runs++; }
static void destruct(void *p) {
  pthread_mutex_lock(&mu);
  destructed += (long)(intptr_t)p;
  pthread_mutex_unlock(&mu);
}

static void *work(void *arg) {
  long i = (long)arg;
  tids[i] = (pid_t)syscall(SYS_gettid);
  pthread_once(&once, init_once);
  pthread_setspecific(key, (void *)(intptr_t)(i + 1));
  errno = (int)i + 100;
  if (pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD) {
    pthread_mutex_lock(&mu);
    serial++;
    pthread_mutex_unlock(&mu);
  }
  long part = 0;
  for (long k = i * (N / THREADS) + 1; k <= (i + 1) * (N / THREADS); k++) part += k;
  pthread_mutex_lock(&mu);
  total += part;
  if (++done == THREADS) pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  if (errno != (int)i + 100) return (void *)-1;
  return (void *)part;
}

int main(void) {
  pthread_t t[THREADS];
  check(pthread_key_create(&key, destruct) == 0);
  check(pthread_barrier_init(&bar, 0, THREADS) == 0);
  for (long i = 0; i < THREADS; i++) check(pthread_create(&t[i], 0, work, (void *)i) == 0);
  pthread_mutex_lock(&mu);
  while (done < THREADS) pthread_cond_wait(&cv, &mu);
  long seen = total;
  pthread_mutex_unlock(&mu);
  long joined = 0;
  int errno_kept = 1;
  for (int i = 0; i < THREADS; i++) {
    void *ret;
    check(pthread_join(t[i], &ret) == 0);
    if ((long)ret == -1) errno_kept = 0;
    joined += (long)ret;
  }
  say("total when the condvar fired: %ld (want %ld)", seen, N * (N + 1) / 2);
  say("sum of joined partials: %ld", joined);
  say("barrier serial threads: %ld, pthread_once runs: %ld", serial, once_runs);
  say("key destructors ran with a sum of %ld", destructed);
  say("errno per thread kept: %d", errno_kept);
  int distinct = 1;
  pid_t me = (pid_t)syscall(SYS_gettid);
  for (int i = 0; i < THREADS; i++) {
    if (tids[i] == me || tids[i] == getpid()) distinct = 0;
    for (int j = 0; j < i; j++)
      if (tids[i] == tids[j]) distinct = 0;
  }
  say("thread ids distinct from each other and from the process: %d", distinct);
  say("main thread's tid is the pid: %d", me == getpid());
  return 0;
}
