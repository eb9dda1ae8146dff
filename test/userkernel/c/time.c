// Clocks and sleeps through the raw system calls (glibc would answer clock_gettime from the
// vDSO natively, which faults instead of failing with EFAULT). Prints only facts that hold
// on any Linux: results, errno names, and comparisons, never the times themselves.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NSEC 1000000000LL
// Unmapped (the first page) and read-only (string literals live in .rodata).
static void *const BAD = (void *)8;
static const char RODATA[64] = "read-only";

static const char *E(long r) {
  if (r == 0) return "0";
  return r < 0 ? strerrorname_np(errno) : "positive";
}

static long long ns(struct timespec t) { return t.tv_sec * NSEC + t.tv_nsec; }

static long long now(clockid_t c) {
  struct timespec t;
  if (syscall(SYS_clock_gettime, c, &t) != 0) return -1;
  return ns(t);
}

static long gettime(clockid_t c, void *p) { return syscall(SYS_clock_gettime, c, p); }

static void busy(long n) {
  for (volatile long i = 0; i < n; i++) {
  }
}

/** How many of `rounds` sleeps of `want` ns on `clock` came back early (must be none). */
static int early(int rounds, long want, int use_clock_nanosleep) {
  int bad = 0;
  for (int i = 0; i < rounds; i++) {
    struct timespec req = {0, want};
    long long a = now(CLOCK_MONOTONIC);
    long r = use_clock_nanosleep ? syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &req, NULL)
                                 : syscall(SYS_nanosleep, &req, NULL);
    long long b = now(CLOCK_MONOTONIC);
    if (r != 0 || b - a < want) bad++;
  }
  return bad;
}

int main(void) {
  static const struct {
    clockid_t id;
    const char *name;
  } clocks[] = {
      {CLOCK_REALTIME, "REALTIME"},
      {CLOCK_MONOTONIC, "MONOTONIC"},
      {CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME_ID"},
      {CLOCK_THREAD_CPUTIME_ID, "THREAD_CPUTIME_ID"},
      {CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW"},
      {CLOCK_REALTIME_COARSE, "REALTIME_COARSE"},
      {CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE"},
      {CLOCK_BOOTTIME, "BOOTTIME"},
      {CLOCK_TAI, "TAI"},
  };
  int n = sizeof clocks / sizeof clocks[0];

  for (int i = 0; i < n; i++) {
    struct timespec t = {-1, -1};
    long r = gettime(clocks[i].id, &t);
    printf("gettime %s: %s valid %d\n", clocks[i].name, E(r), t.tv_sec >= 0 && t.tv_nsec >= 0 && t.tv_nsec < NSEC);
  }
  // Clocks that never go backwards, read back to back.
  clockid_t steady[] = {CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_MONOTONIC_RAW, CLOCK_PROCESS_CPUTIME_ID,
                        CLOCK_THREAD_CPUTIME_ID};
  for (unsigned i = 0; i < sizeof steady / sizeof steady[0]; i++) {
    int back = 0;
    long long prev = now(steady[i]);
    for (int k = 0; k < 3000; k++) {
      long long cur = now(steady[i]);
      if (cur < prev) back++;
      prev = cur;
    }
    printf("clock %d backwards: %d\n", (int)steady[i], back);
  }
  long long mono = now(CLOCK_MONOTONIC), boot = now(CLOCK_BOOTTIME);
  printf("boottime >= monotonic: %d\n", boot >= mono);

  long t0 = syscall(SYS_time, NULL);
  long long rt = now(CLOCK_REALTIME);
  long long d = rt / NSEC - t0;
  printf("realtime within a second of time(): %d\n", d >= -1 && d <= 1);
  printf("realtime after 2020: %d\n", rt / NSEC > 1577836800);
  time_t stored = 0;
  long t1 = syscall(SYS_time, &stored);
  printf("time stores its result: %d\n", t1 == stored && t1 >= t0);
  printf("time bad pointer: %s\n", E(syscall(SYS_time, BAD)));

  // CPU time counts work, not waiting.
  long long c0 = now(CLOCK_PROCESS_CPUTIME_ID);
  busy(100000000);
  long long c1 = now(CLOCK_PROCESS_CPUTIME_ID);
  printf("cputime grows with work: %d\n", c1 - c0 >= 10000000);
  struct timespec nap = {0, 200000000};
  c0 = now(CLOCK_PROCESS_CPUTIME_ID);
  long long w0 = now(CLOCK_MONOTONIC);
  syscall(SYS_nanosleep, &nap, NULL);
  long long w1 = now(CLOCK_MONOTONIC);
  c1 = now(CLOCK_PROCESS_CPUTIME_ID);
  printf("cputime stays while sleeping: %d\n", c1 - c0 < 100000000 && w1 - w0 >= 200000000);

  struct timespec t;
  printf("gettime bad clock 99: %s\n", E(gettime(99, &t)));
  printf("gettime bad clock 10: %s\n", E(gettime(10, &t)));
  printf("gettime bad clock -1: %s\n", E(gettime(-1, &t)));
  printf("gettime bad pointer: %s\n", E(gettime(CLOCK_MONOTONIC, BAD)));
  printf("gettime read-only pointer: %s\n", E(gettime(CLOCK_REALTIME, (void *)RODATA)));

  clockid_t fine[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_PROCESS_CPUTIME_ID};
  for (unsigned i = 0; i < sizeof fine / sizeof fine[0]; i++) {
    struct timespec res = {-1, -1};
    long r = syscall(SYS_clock_getres, fine[i], &res);
    printf("getres %d: %s %lld ns\n", (int)fine[i], E(r), ns(res));
  }
  struct timespec cres = {-1, -1};
  long r = syscall(SYS_clock_getres, CLOCK_MONOTONIC_COARSE, &cres);
  printf("getres coarse: %s coarser than 1us %d\n", E(r), ns(cres) >= 1000 && ns(cres) <= NSEC);
  printf("getres NULL: %s\n", E(syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL)));
  printf("getres bad clock: %s\n", E(syscall(SYS_clock_getres, 99, &cres)));
  printf("getres bad pointer: %s\n", E(syscall(SYS_clock_getres, CLOCK_MONOTONIC, BAD)));

  struct timeval tv = {-1, -1};
  r = syscall(SYS_gettimeofday, &tv, NULL);
  printf("gettimeofday: %s usec valid %d near time() %d\n", E(r), tv.tv_usec >= 0 && tv.tv_usec < 1000000,
         tv.tv_sec - t0 >= 0 && tv.tv_sec - t0 <= 2);
  struct timezone tz;
  memset(&tz, 0x55, sizeof tz);
  r = syscall(SYS_gettimeofday, &tv, &tz);
  printf("gettimeofday with tz: %s tz written %d\n", E(r), tz.tz_minuteswest != 0x55555555 && tz.tz_dsttime != 0x55555555);
  printf("gettimeofday tz only: %s\n", E(syscall(SYS_gettimeofday, NULL, &tz)));
  printf("gettimeofday NULL NULL: %s\n", E(syscall(SYS_gettimeofday, NULL, NULL)));
  printf("gettimeofday bad tv: %s\n", E(syscall(SYS_gettimeofday, BAD, NULL)));
  printf("gettimeofday bad tz: %s\n", E(syscall(SYS_gettimeofday, &tv, BAD)));

  // Sleeps last at least what was asked, each time.
  struct timespec req = {0, 30000000};
  long long a = now(CLOCK_MONOTONIC);
  r = syscall(SYS_nanosleep, &req, NULL);
  long long b = now(CLOCK_MONOTONIC);
  printf("nanosleep 30ms: %s long enough %d\n", E(r), b - a >= 30000000);
  printf("nanosleep early among 40 of 1.5ms: %d\n", early(40, 1500000, 0));
  printf("nanosleep early among 40 of 0.3ms: %d\n", early(40, 300000, 0));
  struct timespec zero = {0, 0};
  printf("nanosleep 0: %s\n", E(syscall(SYS_nanosleep, &zero, NULL)));
  printf("nanosleep unused bad rem: %s\n", E(syscall(SYS_nanosleep, &zero, BAD)));
  struct timespec big = {0, NSEC}, neg = {0, -1}, negsec = {-1, 0};
  printf("nanosleep nsec 1e9: %s\n", E(syscall(SYS_nanosleep, &big, NULL)));
  printf("nanosleep nsec -1: %s\n", E(syscall(SYS_nanosleep, &neg, NULL)));
  printf("nanosleep sec -1: %s\n", E(syscall(SYS_nanosleep, &negsec, NULL)));
  printf("nanosleep bad pointer: %s\n", E(syscall(SYS_nanosleep, BAD, NULL)));

  a = now(CLOCK_MONOTONIC);
  r = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &req, NULL);
  b = now(CLOCK_MONOTONIC);
  printf("clock_nanosleep relative monotonic: %s long enough %d\n", E(r), b - a >= 30000000);
  a = now(CLOCK_REALTIME);
  r = syscall(SYS_clock_nanosleep, CLOCK_REALTIME, 0, &req, NULL);
  b = now(CLOCK_REALTIME);
  printf("clock_nanosleep relative realtime: %s long enough %d\n", E(r), b - a >= 30000000);
  printf("clock_nanosleep early among 40 of 1.5ms: %d\n", early(40, 1500000, 1));
  long long deadline = now(CLOCK_MONOTONIC) + 40000000;
  struct timespec abs = {deadline / NSEC, deadline % NSEC};
  r = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
  printf("clock_nanosleep absolute monotonic: %s reached %d\n", E(r), now(CLOCK_MONOTONIC) >= deadline);
  deadline = now(CLOCK_BOOTTIME) + 20000000;
  abs = (struct timespec){deadline / NSEC, deadline % NSEC};
  r = syscall(SYS_clock_nanosleep, CLOCK_BOOTTIME, TIMER_ABSTIME, &abs, NULL);
  printf("clock_nanosleep absolute boottime: %s reached %d\n", E(r), now(CLOCK_BOOTTIME) >= deadline);
  struct timespec past = {1, 0};
  printf("clock_nanosleep absolute past: %s\n", E(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL)));
  printf("clock_nanosleep bad clock: %s\n", E(syscall(SYS_clock_nanosleep, 99, 0, &req, NULL)));
  printf("clock_nanosleep thread cputime: %s\n",
         E(syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL)));
  printf("clock_nanosleep monotonic raw: %s\n", E(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC_RAW, 0, &req, NULL)));
  printf("clock_nanosleep coarse: %s\n", E(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC_COARSE, 0, &req, NULL)));
  printf("clock_nanosleep nsec 1e9: %s\n", E(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &big, NULL)));
  printf("clock_nanosleep nsec -1: %s\n", E(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &neg, NULL)));
  printf("clock_nanosleep absolute sec -1: %s\n",
         E(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &negsec, NULL)));
  printf("clock_nanosleep bad pointer: %s\n", E(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, BAD, NULL)));
  // glibc's wrapper returns the error number instead of setting errno.
  printf("libc clock_nanosleep nsec 1e9: %d\n", clock_nanosleep(CLOCK_MONOTONIC, 0, &big, NULL) == EINVAL);
  return 0;
}
