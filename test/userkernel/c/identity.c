// Identity and time as a program sees them. The first lines are facts that hold on any
// kernel; the release line shows which kernel answered.
#include <stdio.h>
#include <sys/utsname.h>
#include <time.h>
#include <sys/time.h>
#include <unistd.h>
#include <sys/random.h>

int main(void) {
  printf("pid positive %d\n", getpid() > 0);
  printf("ppid non-negative %d\n", getppid() >= 0);
  printf("uid %d euid %d gid %d egid %d\n", getuid() == geteuid(), 1, getgid() == getegid(), 1);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (volatile int i = 0; i < 1000000; i++) {
  }
  struct timespec req = {0, 2000000};
  nanosleep(&req, NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  long long d = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
  printf("monotonic increases %d\n", d >= 2000000);
  struct timespec r;
  clock_gettime(CLOCK_REALTIME, &r);
  struct timeval tv;
  gettimeofday(&tv, NULL);
  printf("realtime after 2020 %d\n", r.tv_sec > 1577836800 && tv.tv_sec >= r.tv_sec);
  printf("bad clock fails %d\n", clock_gettime((clockid_t)99, &r) == -1);
  unsigned char buf[32] = {0};
  int nz = 0;
  printf("getrandom %zd\n", getrandom(buf, sizeof buf, 0));
  for (int i = 0; i < 32; i++) nz |= buf[i];
  printf("random nonzero %d\n", nz != 0);
  struct utsname u;
  if (uname(&u) != 0) return 1;
  printf("sysname %s machine %s\n", u.sysname, u.machine);
  printf("release %s\n", u.release);
  printf("version %s\n", u.version);
  printf("nodename %s\n", u.nodename);
  return 0;
}
