// Interval timers, alarm, POSIX timers, CPU-time clocks and resource usage. Timer signals
// are blocked, so each firing shows as a pending signal (sigpending) rather than running a
// handler; "alarm" as argv[1] leaves SIGALRM to its default action, which ends the process.
// Prints results, errno names and comparisons, never the times themselves.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#define NSEC 1000000000LL

static const char *E(long r) {
  if (r == 0) return "0";
  if (r > 0) return "positive";
  return strerrorname_np(errno);
}

static long long now(clockid_t c) {
  struct timespec t;
  if (syscall(SYS_clock_gettime, c, &t) != 0) return -1;
  return t.tv_sec * NSEC + t.tv_nsec;
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
  syscall(SYS_nanosleep, &t, NULL);
}

static int pending(int sig) {
  sigset_t s;
  sigpending(&s);
  return sigismember(&s, sig);
}

/** Take a pending (blocked) signal off again: ignoring a signal discards it, even blocked. */
static void consume(int sig) {
  signal(sig, SIG_IGN);
  signal(sig, SIG_DFL);
}

/** Compute until `sig` is pending or `limit_ms` of wall time passed; returns whether it came. */
static int spin_until(int sig, long limit_ms) {
  long long end = now(CLOCK_MONOTONIC) + limit_ms * 1000000LL;
  while (!pending(sig) && now(CLOCK_MONOTONIC) < end)
    for (volatile int i = 0; i < 100000; i++) {
    }
  return pending(sig);
}

static long long cpu_ns(void) { return now(CLOCK_PROCESS_CPUTIME_ID); }

/** CPU work in user mode: long stretches of computing between looks at the clock. */
static void busy_ms(long ms) {
  long long end = cpu_ns() + ms * 1000000LL;
  while (cpu_ns() < end)
    for (volatile int i = 0; i < 1000000; i++) {
    }
}

static void itimers(void) {
  struct itimerval v, old;
  getitimer(ITIMER_REAL, &v);
  printf("getitimer real initially: %ld.%06ld\n", (long)v.it_value.tv_sec, (long)v.it_value.tv_usec);
  struct itimerval set = {{1, 250000}, {5, 0}};
  printf("setitimer real 5s every 1.25s: %s\n", E(setitimer(ITIMER_REAL, &set, &old)));
  getitimer(ITIMER_REAL, &v);
  printf("getitimer real: value %ld (4.x) interval %ld.%06ld\n", (long)v.it_value.tv_sec,
         (long)v.it_interval.tv_sec, (long)v.it_interval.tv_usec);
  struct itimerval zero = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &zero, &old);
  printf("disarm returns old: value %ld interval %ld.%06ld\n", (long)old.it_value.tv_sec,
         (long)old.it_interval.tv_sec, (long)old.it_interval.tv_usec);
  getitimer(ITIMER_REAL, &v);
  printf("after disarm: %ld.%06ld interval %ld\n", (long)v.it_value.tv_sec, (long)v.it_value.tv_usec,
         (long)v.it_interval.tv_sec);
  struct itimerval bad = {{0, 0}, {0, 1000000}};
  printf("setitimer usec 1e6: %s\n", E(setitimer(ITIMER_REAL, &bad, NULL)));
  printf("setitimer bad which: %s\n", E(setitimer(7, &set, NULL)));
  printf("getitimer bad which: %s\n", E(getitimer(-1, &v)));
  printf("getitimer bad pointer: %s\n", E(syscall(SYS_getitimer, ITIMER_REAL, (void *)8)));

  printf("alarm(10) first: %u\n", alarm(10));
  printf("alarm(3) after 10: %u\n", alarm(3));
  printf("alarm(0) after 3: %u\n", alarm(0));
  printf("alarm(0) when none: %u\n", alarm(0));

  // ITIMER_REAL fires (SIGALRM blocked: it waits pending).
  struct itimerval shot = {{0, 0}, {0, 20000}};
  setitimer(ITIMER_REAL, &shot, NULL);
  sleep_ms(100);
  printf("real 20ms fired while sleeping: %d\n", pending(SIGALRM));
  getitimer(ITIMER_REAL, &v);
  printf("real one-shot after firing: %ld.%06ld\n", (long)v.it_value.tv_sec, (long)v.it_value.tv_usec);
  consume(SIGALRM);

  // ITIMER_VIRTUAL and ITIMER_PROF count CPU time: no firing while sleeping, firing with work.
  struct itimerval cpu = {{0, 0}, {0, 30000}};
  setitimer(ITIMER_VIRTUAL, &cpu, NULL);
  sleep_ms(60);
  printf("virtual 30ms not fired while sleeping: %d\n", !pending(SIGVTALRM));
  getitimer(ITIMER_VIRTUAL, &v);
  printf("virtual barely moved while sleeping: %d\n", v.it_value.tv_sec == 0 && v.it_value.tv_usec > 20000);
  long long c0 = cpu_ns();
  printf("virtual fires with work: %d\n", spin_until(SIGVTALRM, 5000));
  printf("virtual fired after its CPU time: %d\n", cpu_ns() - c0 >= 25000000);
  consume(SIGVTALRM);
  setitimer(ITIMER_PROF, &cpu, NULL);
  c0 = cpu_ns();
  printf("prof fires with work: %d\n", spin_until(SIGPROF, 5000));
  printf("prof fired after its CPU time: %d\n", cpu_ns() - c0 >= 25000000);
  consume(SIGPROF);
}

static void posix_timers(void) {
  timer_t t;
  struct sigevent ev = {0};
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGUSR1;
  printf("timer_create monotonic: %s\n", E(timer_create(CLOCK_MONOTONIC, &ev, &t)));
  struct itimerspec its = {{0, 0}, {0, 20000000}}, got, old;
  timer_gettime(t, &got);
  printf("gettime before set: %ld.%09ld\n", (long)got.it_value.tv_sec, (long)got.it_value.tv_nsec);
  printf("settime 20ms: %s\n", E(timer_settime(t, 0, &its, &old)));
  timer_gettime(t, &got);
  printf("gettime armed: %d\n", got.it_value.tv_sec == 0 && got.it_value.tv_nsec > 0 && got.it_value.tv_nsec <= 20000000);
  sleep_ms(80);
  printf("fired: %d\n", pending(SIGUSR1));
  timer_gettime(t, &got);
  printf("one-shot after firing: %ld.%09ld\n", (long)got.it_value.tv_sec, (long)got.it_value.tv_nsec);
  printf("overrun with the signal not taken: %d\n", timer_getoverrun(t));
  consume(SIGUSR1);

  // Periodic: the interval shows, the value stays within it.
  struct itimerspec per = {{0, 10000000}, {0, 10000000}};
  timer_settime(t, 0, &per, NULL);
  sleep_ms(35);
  timer_gettime(t, &got);
  printf("periodic interval: %ld.%09ld value within %d\n", (long)got.it_interval.tv_sec, (long)got.it_interval.tv_nsec,
         got.it_value.tv_sec == 0 && got.it_value.tv_nsec > 0 && got.it_value.tv_nsec <= 10000000);
  struct itimerspec zero = {{0, 0}, {0, 0}};
  timer_settime(t, 0, &zero, &old);
  printf("disarm returns the interval: %ld\n", (long)old.it_interval.tv_nsec);
  consume(SIGUSR1);

  // TIMER_ABSTIME in the past fires at once.
  struct itimerspec past = {{0, 0}, {1, 0}};
  long sr = timer_settime(t, TIMER_ABSTIME, &past, NULL);
  sleep_ms(20);
  printf("settime absolute past: %s fired %d\n", E(sr), pending(SIGUSR1));
  consume(SIGUSR1);
  struct itimerspec badts = {{0, 0}, {0, NSEC}};
  printf("settime bad timespec: %s\n", E(timer_settime(t, 0, &badts, NULL)));
  printf("timer_delete: %s\n", E(timer_delete(t)));
  printf("gettime deleted: %s\n", E(timer_gettime(t, &got)));
  printf("delete deleted: %s\n", E(timer_delete(t)));

  // Realtime clock, absolute.
  timer_t r;
  timer_create(CLOCK_REALTIME, &ev, &r);
  struct itimerspec abs = {{0, 0}, {0, 0}};
  long long at = now(CLOCK_REALTIME) + 20000000;
  abs.it_value.tv_sec = at / NSEC;
  abs.it_value.tv_nsec = at % NSEC;
  timer_settime(r, TIMER_ABSTIME, &abs, NULL);
  sleep_ms(80);
  printf("realtime absolute fired: %d\n", pending(SIGUSR1));
  consume(SIGUSR1);
  timer_delete(r);

  // SIGEV_NONE: counts down, never signals.
  timer_t n;
  struct sigevent none = {0};
  none.sigev_notify = SIGEV_NONE;
  timer_create(CLOCK_MONOTONIC, &none, &n);
  struct itimerspec one = {{0, 0}, {0, 30000000}};
  timer_settime(n, 0, &one, NULL);
  sleep_ms(50);
  timer_gettime(n, &got);
  printf("sigev_none expired, no signal: %ld.%09ld %d\n", (long)got.it_value.tv_sec, (long)got.it_value.tv_nsec,
         !pending(SIGUSR1) && !pending(SIGALRM));
  timer_delete(n);

  // SIGEV_THREAD_ID to this thread.
  timer_t th;
  struct sigevent tev = {0};
  tev.sigev_notify = SIGEV_THREAD_ID;
  tev.sigev_signo = SIGUSR2;
  tev._sigev_un._tid = gettid();
  printf("timer_create thread id: %s\n", E(timer_create(CLOCK_MONOTONIC, &tev, &th)));
  timer_settime(th, 0, &its, NULL);
  sleep_ms(80);
  printf("thread-directed fired: %d\n", pending(SIGUSR2));
  consume(SIGUSR2);
  timer_delete(th);
  tev._sigev_un._tid = 999999;
  printf("timer_create bad thread id: %s\n", E(timer_create(CLOCK_MONOTONIC, &tev, &th)));

  // NULL sigevent: SIGALRM.
  timer_t dflt;
  timer_create(CLOCK_MONOTONIC, NULL, &dflt);
  timer_settime(dflt, 0, &its, NULL);
  sleep_ms(80);
  printf("null sigevent gives SIGALRM: %d\n", pending(SIGALRM));
  consume(SIGALRM);
  timer_delete(dflt);

  // CPU-time timer.
  timer_t c;
  timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &c);
  struct itimerspec cpu = {{0, 0}, {0, 30000000}};
  timer_settime(c, 0, &cpu, NULL);
  sleep_ms(60);
  printf("cpu timer not fired while sleeping: %d\n", !pending(SIGUSR1));
  long long c0 = cpu_ns();
  printf("cpu timer fires with work: %d\n", spin_until(SIGUSR1, 5000));
  printf("cpu timer fired after its CPU time: %d\n", cpu_ns() - c0 >= 25000000);
  consume(SIGUSR1);
  timer_delete(c);

  struct sigevent badsig = {0};
  badsig.sigev_notify = SIGEV_SIGNAL;
  badsig.sigev_signo = 65;
  printf("timer_create bad signal: %s\n", E(timer_create(CLOCK_MONOTONIC, &badsig, &t)));
  badsig.sigev_signo = SIGUSR1;
  badsig.sigev_notify = 99;
  printf("timer_create bad notify: %s\n", E(timer_create(CLOCK_MONOTONIC, &badsig, &t)));
  printf("timer_create bad clock: %s\n", E(timer_create(99, &ev, &t)));
  printf("timer_create monotonic raw: %s\n", E(timer_create(CLOCK_MONOTONIC_RAW, &ev, &t)));
}

static void cpu_clocks(void) {
  clockid_t pc, tc;
  printf("clock_getcpuclockid self: %d\n", clock_getcpuclockid(0, &pc));
  printf("clock_getcpuclockid own pid: %d\n", clock_getcpuclockid(getpid(), &pc));
  printf("clock_getcpuclockid no such pid: %s\n", strerrorname_np(clock_getcpuclockid(999999, &tc)));
  printf("pthread_getcpuclockid: %d\n", pthread_getcpuclockid(pthread_self(), &tc));
  long long p0 = now(pc), t0 = now(tc), s0 = now(CLOCK_THREAD_CPUTIME_ID);
  busy_ms(40);
  long long p1 = now(pc), t1 = now(tc), s1 = now(CLOCK_THREAD_CPUTIME_ID);
  printf("pid cpu clock grows with work: %d\n", p1 - p0 >= 35000000);
  printf("thread cpu clock grows with work: %d\n", t1 - t0 >= 35000000 && s1 - s0 >= 35000000);
  sleep_ms(50);
  printf("pid cpu clock stays while sleeping: %d\n", now(pc) - p1 < 20000000);
  struct timespec res;
  printf("getres pid cpu clock: %ld ns\n", syscall(SYS_clock_getres, pc, &res) == 0 ? res.tv_nsec : -1);
  printf("gettime malformed cpu clock: %s\n", E(syscall(SYS_clock_gettime, (clockid_t)-1, &res)));
  printf("gettime thread clock of no thread: %s\n", E(syscall(SYS_clock_gettime, (clockid_t)((~999999 << 3) | 6), &res)));
}

static long long tv_ns(struct timeval v) { return v.tv_sec * NSEC + v.tv_usec * 1000LL; }

static void usage(void) {
  struct rusage a, b, th;
  getrusage(RUSAGE_SELF, &a);
  struct tms ta, tb;
  times(&ta);
  busy_ms(60);
  getrusage(RUSAGE_SELF, &b);
  getrusage(RUSAGE_THREAD, &th);
  times(&tb);
  printf("rusage self grows with work: %d\n", tv_ns(b.ru_utime) + tv_ns(b.ru_stime) - tv_ns(a.ru_utime) - tv_ns(a.ru_stime) >= 50000000);
  printf("rusage user time dominates: %d\n", tv_ns(b.ru_utime) - tv_ns(a.ru_utime) >= 30000000);
  printf("rusage thread covers the work: %d\n", tv_ns(th.ru_utime) + tv_ns(th.ru_stime) >= 50000000);
  printf("rusage self at least the thread's: %d\n",
         tv_ns(b.ru_utime) + tv_ns(b.ru_stime) + 10000000 >= tv_ns(th.ru_utime) + tv_ns(th.ru_stime));
  printf("times utime+stime grows with work: %d\n", (tb.tms_utime + tb.tms_stime) - (ta.tms_utime + ta.tms_stime) >= 4);
  printf("times no children yet: %ld %ld\n", (long)tb.tms_cutime, (long)tb.tms_cstime);
  struct rusage ch;
  getrusage(RUSAGE_CHILDREN, &ch);
  printf("rusage children none: %ld\n", (long)(tv_ns(ch.ru_utime) + tv_ns(ch.ru_stime)));
  printf("rusage bad who: %s\n", E(getrusage(5, &a)));
  printf("rusage bad pointer: %s\n", E(syscall(SYS_getrusage, RUSAGE_SELF, (void *)8)));
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1 && strcmp(argv[1], "alarm") == 0) {
    printf("alarm in 50ms, default action\n");
    struct itimerval shot = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &shot, NULL);
    for (int i = 0; i < 50; i++) sleep_ms(100);
    printf("still alive\n");
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "exec") == 0) {
    // A POSIX timer and an interval timer, then execve of this program.
    timer_t t;
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_NONE;
    timer_create(CLOCK_MONOTONIC, &ev, &t);
    struct itimerspec its = {{0, 0}, {100, 0}};
    timer_settime(t, 0, &its, NULL);
    struct itimerval real = {{0, 0}, {100, 0}};
    setitimer(ITIMER_REAL, &real, NULL);
    printf("timer id before exec: %ld\n", (long)(intptr_t)t);
    char *args[] = {argv[0], "after-exec", NULL};
    execv("/proc/self/exe", args);
    printf("execv: %s\n", strerrorname_np(errno));
    return 1;
  }
  if (argc > 1 && strcmp(argv[1], "after-exec") == 0) {
    struct itimerspec got;
    printf("posix timer gone after exec: %s\n", E(timer_gettime((timer_t)0, &got)));
    struct itimerval v;
    getitimer(ITIMER_REAL, &v);
    printf("interval timer kept after exec: %d\n", v.it_value.tv_sec >= 90);
    return 0;
  }
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGALRM);
  sigaddset(&s, SIGVTALRM);
  sigaddset(&s, SIGPROF);
  sigaddset(&s, SIGUSR1);
  sigaddset(&s, SIGUSR2);
  sigprocmask(SIG_BLOCK, &s, NULL);
  itimers();
  posix_timers();
  cpu_clocks();
  usage();
  return 0;
}
