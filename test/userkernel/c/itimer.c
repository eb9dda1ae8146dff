// setitimer/getitimer: ITIMER_REAL every 20 ms delivers SIGALRM (three taken with
// sigsuspend), getitimer reads back the interval and a value within it, setitimer returns the
// old setting, a zero value disarms; ITIMER_VIRTUAL and ITIMER_PROF count the process's CPU
// time (a busy loop gets SIGVTALRM and SIGPROF, a sleep does not); alarm() returns the seconds
// left of the previous one.
#include <signal.h>
#include <sys/time.h>
#include "compat.h"

static volatile sig_atomic_t alrm, vt, prof;
static void on(int sig) {
  if (sig == SIGALRM) alrm++;
  if (sig == SIGVTALRM) vt++;
  if (sig == SIGPROF) prof++;
}

int main(void) {
  signal(SIGALRM, on);
  signal(SIGVTALRM, on);
  signal(SIGPROF, on);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGALRM);
  sigprocmask(SIG_BLOCK, &block, &old);
  struct itimerval it = {{0, 20000}, {0, 20000}}, got, prev;
  check(setitimer(ITIMER_REAL, &it, 0) == 0);
  while (alrm < 3) sigsuspend(&old);
  say("ITIMER_REAL: at least 3 SIGALRMs: %d", alrm >= 3);
  check(getitimer(ITIMER_REAL, &got) == 0);
  say("getitimer: interval %ld us, value within it %d", (long)got.it_interval.tv_usec,
      got.it_value.tv_sec == 0 && got.it_value.tv_usec > 0 && got.it_value.tv_usec <= 20000);
  struct itimerval zero = {{0, 0}, {0, 0}};
  check(setitimer(ITIMER_REAL, &zero, &prev) == 0);
  say("disarm returns the old interval: %ld us", (long)prev.it_interval.tv_usec);
  check(getitimer(ITIMER_REAL, &got) == 0);
  say("disarmed: %ld.%06ld", (long)got.it_value.tv_sec, (long)got.it_value.tv_usec);
  sigprocmask(SIG_SETMASK, &old, 0);

  // A sleep uses no CPU time: the CPU timers do not fire during it.
  struct itimerval cpu = {{0, 0}, {0, 10000}};
  check(setitimer(ITIMER_VIRTUAL, &cpu, 0) == 0);
  check(setitimer(ITIMER_PROF, &cpu, 0) == 0);
  struct timespec ms50 = {0, 50 * 1000 * 1000};
  while (nanosleep(&ms50, &ms50) != 0) {
  }
  say("after a 50 ms sleep: SIGVTALRM %d, SIGPROF %d", (int)vt, (int)prof);
  volatile unsigned long spin = 0;
  while (!vt || !prof) spin++;
  say("after a busy loop: SIGVTALRM %d, SIGPROF %d", (int)vt, (int)prof);
  check(getitimer(ITIMER_VIRTUAL, &got) == 0);
  say("one-shot ITIMER_VIRTUAL is disarmed after it fired: %d", got.it_value.tv_sec == 0 && got.it_value.tv_usec == 0);

  say("alarm(10) with none set: %u", alarm(10));
  unsigned left = alarm(0);
  say("alarm(0) after it: %u left", left);
  return 0;
}
