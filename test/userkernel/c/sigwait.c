// Waiting for signals and sending them within one process: rt_sigtimedwait takes a blocked
// pending signal with its siginfo (SI_TKILL from raise, queued real-time values in order,
// EAGAIN on a zero or elapsed timeout, EINVAL on a bad one); sigsuspend and ppoll with a mask
// that lets a pending signal in run its handler, fail with EINTR and put the caller's mask
// back; kill's and tgkill's errors and existence checks.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile int handled;
static void on_sig(int sig) { handled = sig; }

static const char *err(int r) { return r == 0 ? "0" : strerror(errno); }

static long ms_since(struct timespec *a) {
  struct timespec b;
  clock_gettime(CLOCK_MONOTONIC, &b);
  return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

int main(void) {
  setvbuf(stdout, 0, _IONBF, 0);
  sigset_t set, old, now;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &set, &old);
  siginfo_t si;
  struct timespec zero = {0, 0}, second = {1, 0}, bad = {0, 1000000000}, short_ = {0, 50000000};

  raise(SIGUSR1);
  int s = sigtimedwait(&set, &si, &second);
  printf("raise then sigtimedwait: %d, si_signo %d, si_code %d, si_pid right %d\n", s == SIGUSR1, si.si_signo,
         si.si_code, si.si_pid == getpid());

  for (int i = 1; i <= 3; i++) sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = i * 10});
  for (int i = 0; i < 3; i++) {
    s = sigwaitinfo(&set, &si);
    printf("queued %d: signal RTMIN %d, SI_QUEUE %d, value %d\n", i, s == SIGRTMIN, si.si_code == SI_QUEUE,
           si.si_value.sival_int);
  }
  s = sigtimedwait(&set, &si, &zero);
  printf("nothing left, zero timeout: %d %s\n", s, strerror(errno));
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  s = sigtimedwait(&set, &si, &short_);
  long took = ms_since(&t0);
  printf("50 ms timeout: %d %s, waited it %d\n", s, strerror(errno), took >= 45);
  s = sigtimedwait(&set, &si, &bad);
  printf("bad timeout: %d %s\n", s, strerror(errno));
  printf("sigtimedwait size 4: %s\n", err(syscall(SYS_rt_sigtimedwait, &set, 0, 0, 4)));

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sig;
  sigaction(SIGUSR1, &sa, 0);
  raise(SIGUSR1);
  sigset_t empty;
  sigemptyset(&empty);
  handled = 0;
  int r = sigsuspend(&empty);
  sigprocmask(SIG_BLOCK, 0, &now);
  printf("sigsuspend with a pending signal: %d %s, handler ran %d, usr1 blocked again %d\n", r, strerror(errno),
         handled == SIGUSR1, sigismember(&now, SIGUSR1));
  printf("rt_sigsuspend size 4: %s\n", err(syscall(SYS_rt_sigsuspend, &empty, 4)));

  raise(SIGUSR1);
  handled = 0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct timespec five = {5, 0};
  r = ppoll(0, 0, &five, &empty);
  took = ms_since(&t0);
  sigprocmask(SIG_BLOCK, 0, &now);
  printf("ppoll letting it in: %d %s, at once %d, handler ran %d, usr1 blocked again %d\n", r, strerror(errno),
         took < 2000, handled == SIGUSR1, sigismember(&now, SIGUSR1));

  printf("kill self 0: %s\n", err(kill(getpid(), 0)));
  printf("kill pgrp 0: %s\n", err(kill(0, 0)));
  printf("kill 65: %s\n", err(kill(getpid(), 65)));
  printf("kill -1 sig 65: %s\n", err(kill(-1, 65)));
  printf("kill no such pid: %s\n", err(kill(2000000000, 0)));
  printf("tgkill no such thread: %s\n", err(syscall(SYS_tgkill, getpid(), 2000000000, SIGUSR1)));
  printf("tgkill bad tgid: %s\n", err(syscall(SYS_tgkill, -1, getpid(), SIGUSR1)));
  printf("tgkill right, signal 0: %s\n", err(syscall(SYS_tgkill, getpid(), getpid(), 0)));
  printf("tkill bad tid: %s\n", err(syscall(SYS_tkill, 0, SIGUSR1)));
  sigpending(&now);
  printf("pending at the end: usr1 %d rtmin %d\n", sigismember(&now, SIGUSR1), sigismember(&now, SIGRTMIN));

  // RLIMIT_SIGPENDING bounds what sigqueue queues (EAGAIN beyond it); a kill beyond it adds no
  // instance of a real-time signal already pending.
  struct rlimit rl = {5, 5};
  setrlimit(RLIMIT_SIGPENDING, &rl);
  int ok = 0, again = 0;
  for (int i = 0; i < 8; i++) {
    if (sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = i}) == 0) ok++;
    else if (errno == EAGAIN) again++;
  }
  kill(getpid(), SIGRTMIN);
  int taken = 0;
  while (sigtimedwait(&set, &si, &zero) == SIGRTMIN) taken++;
  // (Natively the limit counts every pending signal of the user on the machine: only the
  // relations are printed.)
  printf("RLIMIT_SIGPENDING 5: sigqueue stopped with EAGAIN %d, at most 5 queued %d, a kill over the limit added none %d\n",
         again > 0 && ok + again == 8, ok <= 5, taken == ok);
  return 0;
}
