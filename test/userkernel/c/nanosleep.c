// Sleeps interrupted by a signal report the time left: nanosleep and clock_nanosleep (relative)
// return EINTR with the remainder, clock_nanosleep with TIMER_ABSTIME returns EINTR and leaves
// the remainder alone, and calling again with the remainder finishes the sleep. Uninterrupted
// sleeps return 0; a bad timespec is EINVAL; an unknown clock is EINVAL. A relative sleep
// or a timed futex wait stopped and continued goes on to its first deadline.
#include <signal.h>
#include <sys/time.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "compat.h"

/**
 * A child sleeps 1.5 s (by `how`), stopped from 0.3 s to 1.1 s: Linux resumes the sleep to its
 * first deadline (restart_syscall), so it ends near 1.5 s, not 1.5 s after the continue.
 */
static void stopped_sleep(const char *how) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t c = fork();
  if (c == 0) {
    struct timespec req = {1, 500 * 1000 * 1000};
    if (how[0] == 'f') {
      // A futex wait nobody wakes: it times out at its first deadline.
      static uint32_t word;
      long r = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &req, NULL, 0);
      _exit(r == -1 && errno == ETIMEDOUT ? 0 : 1);
    }
    int r = how[0] == 'n' ? nanosleep(&req, NULL) : clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
    _exit(r == 0 ? 0 : 1);
  }
  struct timespec ms300 = {0, 300 * 1000 * 1000}, ms800 = {0, 800 * 1000 * 1000};
  nanosleep(&ms300, NULL);
  kill(c, SIGSTOP);
  nanosleep(&ms800, NULL);
  kill(c, SIGCONT);
  int st;
  check(waitpid(c, &st, 0) == c);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  say("%s stopped and continued: exit %d, to its first deadline %d", how, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
      took > 1.45 && took < 2.1);
}

static volatile sig_atomic_t fired;
static void on_alarm(int sig) {
  (void)sig;
  fired++;
}

static void arm_ms(int ms) {
  struct itimerval it = {{0, 0}, {0, ms * 1000}};
  check(setitimer(ITIMER_REAL, &it, 0) == 0);
}

static double secs(struct timespec t) { return (double)t.tv_sec + (double)t.tv_nsec / 1e9; }

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;  // nanosleep is never restarted, whatever the flag says.
  check(sigaction(SIGALRM, &sa, 0) == 0);

  struct timespec two = {2, 0}, rem = {0, 0}, t0, t1;
  arm_ms(50);
  errno = 0;
  int r = nanosleep(&two, &rem);
  say("nanosleep 2 s, SIGALRM at 50 ms: %d %s, remaining between 1 and 1.96 s: %d", r, ename(errno),
      secs(rem) > 1.0 && secs(rem) < 1.96);

  arm_ms(50);
  rem.tv_sec = rem.tv_nsec = 0;
  r = clock_nanosleep(CLOCK_MONOTONIC, 0, &two, &rem);
  say("clock_nanosleep relative: %s, remaining between 1 and 1.96 s: %d", r == EINTR ? "EINTR" : "other",
      secs(rem) > 1.0 && secs(rem) < 1.96);

  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct timespec deadline = t0;
  deadline.tv_sec += 2;
  struct timespec untouched = {7, 7};
  arm_ms(50);
  r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, &untouched);
  say("clock_nanosleep TIMER_ABSTIME: %s, remainder untouched: %d", r == EINTR ? "EINTR" : "other",
      untouched.tv_sec == 7 && untouched.tv_nsec == 7);

  // Resume a short sleep with its remainder: the total is at least what was asked.
  struct timespec short_ = {0, 100 * 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  arm_ms(30);
  int interrupted = 0;
  while (nanosleep(&short_, &short_) != 0) interrupted++;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  say("100 ms sleep resumed after at most one interruption %d: took at least 100 ms %d", interrupted <= 1,
      secs(t1) - secs(t0) >= 0.1);

  struct timespec ms10 = {0, 10 * 1000 * 1000};
  say("uninterrupted 10 ms: %d", nanosleep(&ms10, 0));
  say("clock_nanosleep CLOCK_REALTIME 10 ms: %d", clock_nanosleep(CLOCK_REALTIME, 0, &ms10, 0));
  struct timespec bad = {0, 1000000000};
  errno = 0;
  r = nanosleep(&bad, 0);
  say("tv_nsec of 1e9: %d %s", r, ename(errno));
  say("unknown clock: %s", clock_nanosleep(99, 0, &ms10, 0) == EINVAL ? "EINVAL" : "other");
  say("SIGALRMs handled: %d", (int)fired);
  stopped_sleep("nanosleep");
  stopped_sleep("clock_nanosleep");
  stopped_sleep("futex wait");
  return 0;
}
