// Signals and threads: a process-directed signal goes to a thread that does not block it
// (here the one worker that leaves SIGUSR1 unblocked), tgkill reaches exactly the named
// thread, a thread's own mask is its own (pthread_sigmask in one does not change another),
// sigwait in a worker takes a signal the whole process blocks, and a thread's exit
// (pthread_exit, SYS_exit) leaves the process running while exit_group from a worker ends all.
#include "compat.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static pthread_barrier_t bar;
static volatile pid_t ran_on, target;
static volatile int count;

static void handler(int sig) {
  (void)sig;
  ran_on = (pid_t)syscall(SYS_gettid);
  count++;
}

static void *open_for_usr1(void *arg) {
  (void)arg;
  target = (pid_t)syscall(SYS_gettid);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &s, 0);
  pthread_barrier_wait(&bar);  // ready
  while (count == 0) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, 0);
  }
  pthread_barrier_wait(&bar);  // done
  return 0;
}

static volatile int waited_sig;
static void *waiter(void *arg) {
  (void)arg;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  int sig = 0;
  pthread_barrier_wait(&bar);
  sigwait(&s, &sig);
  waited_sig = sig;
  return 0;
}

static void *just_exit(void *arg) {
  if (arg) syscall(SYS_exit, 0);  // the raw thread exit: this thread only
  pthread_exit((void *)42);
}

static void *exit_all(void *arg) {
  (void)arg;
  syscall(SYS_exit_group, 9);
  return 0;
}

int main(void) {
  // The main thread (and every thread it makes) blocks SIGUSR1 and SIGUSR2.
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  sigaddset(&s, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &s, 0);
  signal(SIGUSR1, handler);

  pthread_barrier_init(&bar, 0, 2);
  pthread_t t;
  check(pthread_create(&t, 0, open_for_usr1, 0) == 0);
  pthread_barrier_wait(&bar);
  check(kill(getpid(), SIGUSR1) == 0);
  pthread_barrier_wait(&bar);
  pthread_join(t, 0);
  say("kill(getpid()): handled once %d, on the one thread that did not block it %d", count == 1, ran_on == target);

  sigset_t mine;
  pthread_sigmask(SIG_BLOCK, 0, &mine);
  say("the main thread's mask is unchanged by the worker's: SIGUSR1 still blocked %d", sigismember(&mine, SIGUSR1));

  // tgkill to the main thread of a signal it blocks: pending for it alone.
  check(syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), SIGUSR1) == 0);
  sigset_t pend;
  sigpending(&pend);
  say("tgkill to the main thread of a blocked signal: pending %d", sigismember(&pend, SIGUSR1));
  count = 0;
  sigset_t u1;
  sigemptyset(&u1);
  sigaddset(&u1, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &u1, 0);
  say("delivered at the unblock, on the main thread: %d %d", count, ran_on == (pid_t)syscall(SYS_gettid));
  pthread_sigmask(SIG_BLOCK, &u1, 0);

  check(pthread_create(&t, 0, waiter, 0) == 0);
  pthread_barrier_wait(&bar);
  check(kill(getpid(), SIGUSR2) == 0);
  pthread_join(t, 0);
  say("sigwait in a worker took SIGUSR2: %d", waited_sig == SIGUSR2);

  void *ret;
  check(pthread_create(&t, 0, just_exit, 0) == 0);
  pthread_join(t, &ret);
  say("pthread_exit(42) joined with %ld; the process goes on", (long)(intptr_t)ret);
  check(pthread_create(&t, 0, just_exit, (void *)1) == 0);
  pthread_join(t, 0);
  say("a raw SYS_exit of one thread: the process goes on");

  pid_t p = xfork();
  if (p == 0) {
    pthread_t w;
    pthread_create(&w, 0, exit_all, 0);
    for (;;) pause();
  }
  int st;
  check(waitpid(p, &st, 0) == p);
  say("exit_group(9) from a worker thread ends the process: exited %d", WEXITSTATUS(st));
  return 0;
}
