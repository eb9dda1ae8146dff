// Robust futexes and thread exit: a thread that ends holding a robust mutex leaves it to the
// next locker with EOWNERDEAD (the kernel walked its robust list at exit: FUTEX_OWNER_DIED,
// one waiter woken), including a waiter that was already blocked on it; pthread_join returns
// once the thread's clear_child_tid word is written and woken.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t m;
static pthread_mutex_t ready_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_c = PTHREAD_COND_INITIALIZER;
static int ready;

static void *holder(void *arg) {
  pthread_mutex_lock(&m);
  pthread_mutex_lock(&ready_m);
  ready = 1;
  pthread_cond_signal(&ready_c);
  pthread_mutex_unlock(&ready_m);
  if (arg) {
    // Give the main thread time to block on the mutex before this thread dies holding it.
    struct timespec t = {0, 50 * 1000 * 1000};
    nanosleep(&t, NULL);
  }
  return NULL;  // ends holding m
}

static void run(int waiter_blocked) {
  ready = 0;
  pthread_t th;
  pthread_create(&th, NULL, holder, waiter_blocked ? (void *)1 : NULL);
  pthread_mutex_lock(&ready_m);
  while (!ready) pthread_cond_wait(&ready_c, &ready_m);
  pthread_mutex_unlock(&ready_m);
  if (!waiter_blocked) pthread_join(th, NULL);
  int r = pthread_mutex_lock(&m);
  printf("%s: lock after the owner died: %s\n", waiter_blocked ? "blocked waiter" : "later locker",
         r == 0 ? "0" : strerrorname_np(r));
  printf("consistent: %d\n", pthread_mutex_consistent(&m));
  printf("unlock: %d\n", pthread_mutex_unlock(&m));
  if (waiter_blocked) printf("join: %d\n", pthread_join(th, NULL));
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&m, &a);
  run(0);
  run(1);
  printf("lock again: %d\n", pthread_mutex_lock(&m));
  return 0;
}
