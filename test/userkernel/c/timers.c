// POSIX timers: timer_create with SIGEV_SIGNAL (a periodic 10 ms timer whose SIGRTMIN carries
// si_code SI_TIMER, the timer's id and its sigev_value; five expiries taken with sigwaitinfo),
// timer_gettime of an armed and a disarmed timer, SIGEV_NONE (no signal, but the time runs
// down), SIGEV_THREAD_ID (the signal goes to the named thread, not the main one), one-shot
// expiry through a handler, and timer_delete (then EINVAL for the id).
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include "compat.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static volatile pid_t handled_on;
static volatile int handled;
static void handler(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  handled_on = (pid_t)syscall(SYS_gettid);
  handled = si->si_code == SI_TIMER ? si->si_value.sival_int : -1;
}

static pid_t target_tid;
static volatile int target_done;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void *target(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  target_tid = (pid_t)syscall(SYS_gettid);
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  // SIGRTMIN+1 is unblocked here only; wait in sigsuspend for it.
  sigset_t none;
  sigemptyset(&none);
  while (!handled) sigsuspend(&none);
  target_done = 1;
  return 0;
}

int main(void) {
  sigset_t rt;
  sigemptyset(&rt);
  sigaddset(&rt, SIGRTMIN);
  sigaddset(&rt, SIGRTMIN + 1);
  check(sigprocmask(SIG_BLOCK, &rt, 0) == 0);

  timer_t t;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGRTMIN;
  ev.sigev_value.sival_int = 77;
  check(timer_create(CLOCK_MONOTONIC, &ev, &t) == 0);
  struct itimerspec its = {{0, 10 * 1000 * 1000}, {0, 10 * 1000 * 1000}}, cur;
  check(timer_settime(t, 0, &its, 0) == 0);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, SIGRTMIN);
  int ok = 1;
  for (int i = 0; i < 5; i++) {
    siginfo_t si;
    int s = sigwaitinfo(&only, &si);
    if (s != SIGRTMIN || si.si_code != SI_TIMER || si.si_value.sival_int != 77) ok = 0;
  }
  say("SIGEV_SIGNAL: five periodic expiries with SI_TIMER and the value: %d", ok);
  check(timer_gettime(t, &cur) == 0);
  say("armed: interval %ld ns, next expiry within it %d", cur.it_interval.tv_nsec,
      cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 10 * 1000 * 1000);
  struct itimerspec off = {{0, 0}, {0, 0}};
  check(timer_settime(t, 0, &off, &cur) == 0);
  check(timer_gettime(t, &cur) == 0);
  say("disarmed: value %ld.%09ld", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);
  check(timer_delete(t) == 0);
  errno = 0;
  int r = timer_gettime(t, &cur);
  say("after timer_delete: %d %s", r, ename(errno));

  // SIGEV_NONE: nothing is delivered, but the remaining time goes down.
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_NONE;
  check(timer_create(CLOCK_MONOTONIC, &ev, &t) == 0);
  struct itimerspec sec = {{0, 0}, {1, 0}};
  check(timer_settime(t, 0, &sec, 0) == 0);
  struct timespec ms5 = {0, 5 * 1000 * 1000};
  nanosleep(&ms5, 0);
  check(timer_gettime(t, &cur) == 0);
  say("SIGEV_NONE: remaining under a second and over half: %d",
      cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 500 * 1000 * 1000);
  check(timer_delete(t) == 0);

  // SIGEV_THREAD_ID: a one-shot timer aimed at one thread, whose handler reports where it ran.
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO;
  check(sigaction(SIGRTMIN + 1, &sa, 0) == 0);
  pthread_t th;
  check(pthread_create(&th, 0, target, 0) == 0);
  pthread_mutex_lock(&mu);
  while (!target_tid) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = SIGRTMIN + 1;
  ev.sigev_value.sival_int = 88;
  ev.sigev_notify_thread_id = target_tid;
  check(timer_create(CLOCK_REALTIME, &ev, &t) == 0);
  struct itimerspec once = {{0, 0}, {0, 20 * 1000 * 1000}};
  check(timer_settime(t, 0, &once, 0) == 0);
  pthread_join(th, 0);
  say("SIGEV_THREAD_ID: handled on the named thread %d, value %d, that thread went on %d",
      handled_on == target_tid, handled, target_done);
  say("overrun of a one-shot timer: %d", timer_getoverrun(t));
  check(timer_delete(t) == 0);
  return 0;
}
