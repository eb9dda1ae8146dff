// execve in a process that shares its descriptor table (CLONE_FILES) and its signal handlers
// (CLONE_SIGHAND) with its parent: the exec gives it copies of its own first, so closing its
// close-on-exec descriptors and resetting its handlers leaves the parent's alone.
#include "compat.h"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

static volatile int got;
static void on(int s) { got = s; }
static char *self;

static int child(void *arg) {
  (void)arg;
  char *argv[] = {self, "child", NULL};
  char *envp[] = {NULL};
  execve("/proc/self/exe", argv, envp);
  _exit(3);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    // The new program: the handler is gone here, the close-on-exec descriptor closed.
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    say("child after exec: handler default %d, fd 3 %s", sa.sa_handler == SIG_DFL,
        fcntl(3, F_GETFD) < 0 ? ename(errno) : "open");
    return 0;
  }
  self = argv[0];
  signal(SIGUSR1, on);
  int fds[2];
  check(pipe2(fds, O_CLOEXEC) == 0);
  check(fds[0] == 3);
  char *stack = malloc(256 * 1024);
  check(stack != NULL);
  pid_t c = clone(child, stack + 256 * 1024, CLONE_VM | CLONE_FILES | CLONE_SIGHAND | SIGCHLD, NULL);
  check(c > 0);
  int st;
  check(waitpid(c, &st, 0) == c);
  say("child exit %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  say("parent's fd 3 after the child's exec: %s", fcntl(3, F_GETFD) < 0 ? ename(errno) : "open");
  raise(SIGUSR1);
  say("parent's handler still runs: %d", got == SIGUSR1);
  return 0;
}
