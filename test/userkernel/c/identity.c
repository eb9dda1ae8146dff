// Identity and time as a program sees them. All lines but release, version and nodename
// are facts that hold on any kernel; those three show which kernel answered.
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <sys/time.h>
#include <unistd.h>
#include <sys/random.h>

static const char *E(long r) {
  if (r == 0) return "0";
  return r < 0 ? strerrorname_np(errno) : "positive";
}

/** Supplementary groups, credentials and thread ids; setgroups needs privilege. */
static void credentials(void) {
  uid_t r, e, s;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &s);
  getresgid(&gr, &ge, &gs);
  printf("resuid matches %d resgid matches %d\n", r == getuid() && e == geteuid() && s == e,
         gr == getgid() && ge == getegid() && gs == ge);
  printf("tid is pid %d\n", syscall(SYS_gettid) == getpid());
  printf("ppid differs from pid %d\n", getppid() != getpid());
  gid_t list[64];
  int n = getgroups(0, NULL);
  printf("getgroups count agrees %d\n", n >= 0 && getgroups(64, list) == n);
  printf("getgroups -1: %s\n", E(syscall(SYS_getgroups, -1, list)));
  gid_t want[3] = {300, 20, 100};
  long rc = syscall(SYS_setgroups, 3, want);
  printf("setgroups 300 20 100: %s\n", E(rc));
  if (rc == 0) {
    memset(list, 0, sizeof list);
    n = getgroups(64, list);
    // Linux keeps the list sorted.
    printf("getgroups %d: %u %u %u\n", n, list[0], list[1], list[2]);
    printf("getgroups too small: %s\n", E(getgroups(2, list)));
    printf("getgroups bad pointer: %s\n", E(syscall(SYS_getgroups, 3, (void *)8)));
    printf("setgroups bad pointer: %s\n", E(syscall(SYS_setgroups, 2, (void *)8)));
    gid_t invalid[1] = {(gid_t)-1};
    printf("setgroups gid -1: %s\n", E(syscall(SYS_setgroups, 1, invalid)));
    printf("setgroups -1: %s\n", E(syscall(SYS_setgroups, -1, want)));
    printf("setgroups 65537: %s\n", E(syscall(SYS_setgroups, 65537, want)));
    rc = syscall(SYS_setgroups, 0, NULL);
    printf("setgroups none: %s count %d\n", E(rc), getgroups(0, NULL));
  } else {
    printf("setgroups -1: %s\n", E(syscall(SYS_setgroups, -1, want)));
    printf("setgroups own groups: %s\n", E(syscall(SYS_setgroups, 0, NULL)));
  }
}

int main(int argc, char **argv) {
  (void)argv;
  if (argc > 1) {
    // Only the credential facts: the test runs this as an unprivileged user too.
    printf("uid %d gid %d\n", (int)getuid(), (int)getgid());
    credentials();
    return 0;
  }
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
  credentials();
  printf("uname bad pointer: %s\n", E(syscall(SYS_uname, (void *)8)));
  struct utsname u;
  if (uname(&u) != 0) return 1;
  printf("sysname %s machine %s\n", u.sysname, u.machine);
  printf("release %s\n", u.release);
  printf("version %s\n", u.version);
  printf("nodename %s\n", u.nodename);
  return 0;
}
