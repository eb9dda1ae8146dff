// execve from a process with several threads: a worker thread execs this program again,
// which starts with one thread (the others are gone), under the process's pid (the same pid
// the parent forked), and with the signal dispositions reset but ignored ones kept and the
// blocked mask kept. Also vfork + exec: the parent resumes once the child execs, with the
// child's write to the shared memory before the exec visible.
#include "compat.h"
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static char *self;
static void *exec_from_worker(void *arg) {
  (void)arg;
  char pidbuf[32];
  snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
  execl(self, self, "after-exec", pidbuf, (char *)0);
  _exit(50);
}

static void *sleeper(void *arg) {
  (void)arg;
  for (;;) pause();
  return 0;
}

static void handler(int sig) { (void)sig; }

static int threads_now(void) {
  // Count the tasks without /proc: the kernel's tgkill to each tid would be needed; instead
  // read /proc/self/status when it is there, the number on the Threads: line.
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  int n = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Threads: %d", &n) == 1) break;
  fclose(f);
  return n;
}

int main(int argc, char **argv) {
  self = argv[0];
  // Run again by exec: never fall through to the forking part below.
  if (argc > 1 && strcmp(argv[1], "vfork-child") == 0) return 3;
  if (argc > 1 && strcmp(argv[1], "after-exec") != 0) return 2;
  if (argc > 2) {
    struct sigaction sa;
    sigaction(SIGUSR1, 0, &sa);
    int reset = sa.sa_handler == SIG_DFL;
    sigaction(SIGUSR2, 0, &sa);
    int kept = sa.sa_handler == SIG_IGN;
    sigset_t m;
    sigprocmask(SIG_BLOCK, 0, &m);
    say("after exec from a worker: same pid %d, main thread's tid is the pid %d, threads %d", atoi(argv[2]) == getpid(),
        (pid_t)syscall(SYS_gettid) == getpid(), threads_now());
    say("handled SIGUSR1 reset to SIG_DFL %d, ignored SIGUSR2 kept %d, blocked SIGTERM kept %d", reset, kept,
        sigismember(&m, SIGTERM));
    return 0;
  }
  pid_t p = xfork();
  if (p == 0) {
    signal(SIGUSR1, handler);
    signal(SIGUSR2, SIG_IGN);
    sigset_t t;
    sigemptyset(&t);
    sigaddset(&t, SIGTERM);
    sigprocmask(SIG_BLOCK, &t, 0);
    pthread_t a, b;
    pthread_create(&a, 0, sleeper, 0);
    pthread_create(&b, 0, exec_from_worker, 0);
    for (;;) pause();
  }
  int st;
  check(waitpid(p, &st, 0) == p);
  say("the exec'd child exited %d", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));

  static volatile int shared;
  shared = 0;
  p = vfork();
  if (p == 0) {
    shared = 1;
    execl(self, self, "vfork-child", (char *)0);
    _exit(51);
  }
  check(p > 0);
  say("vfork: the parent sees the child's write %d", shared);
  check(waitpid(p, &st, 0) == p);
  say("vfork child exited %d", WEXITSTATUS(st));
  return 0;
}
