// fork + exec + wait4 and every way a child can end: exit codes (0, 1, 42, 255, and 256
// which wraps to 0), _exit from a child that exec'd this program again, deaths by SIGKILL,
// SIGTERM, SIGSEGV (a real fault) and SIGABRT (abort), each decoded with the W* macros. Then
// wait with no children left is ECHILD, and wait4 reports the dead child's rusage struct.
#include "compat.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

static void describe(const char *what, int st) {
  if (WIFEXITED(st)) say("%s: exited %d", what, WEXITSTATUS(st));
  else if (WIFSIGNALED(st)) say("%s: killed by signal %d", what, WTERMSIG(st));
  else say("%s: other status %#x", what, st);
}

static int reap(pid_t pid) {
  int st;
  struct rusage ru;
  pid_t got = wait4(pid, &st, 0, &ru);
  check(got == pid);
  return st;
}

int main(int argc, char **argv) {
  // Run again by exec: never fall through to the forking part below.
  if (argc > 1) _exit(argc > 2 && strcmp(argv[1], "exit") == 0 ? atoi(argv[2]) : 2);
  // No core files from the deaths below, whatever the host's core_pattern says of files.
  struct rlimit no = {0, 0};
  setrlimit(RLIMIT_CORE, &no);

  int codes[] = {0, 1, 42, 255, 256};
  for (unsigned i = 0; i < sizeof codes / sizeof *codes; i++) {
    pid_t p = xfork();
    check(p >= 0);
    if (p == 0) exit(codes[i]);
    char what[32];
    snprintf(what, sizeof what, "exit(%d)", codes[i]);
    describe(what, reap(p));
  }

  pid_t p = xfork();
  if (p == 0) {
    execl(argv[0], argv[0], "exit", "77", (char *)0);
    _exit(120);
  }
  describe("exec then _exit(77)", reap(p));

  p = xfork();
  if (p == 0) {
    execl("/no/such/program", "x", (char *)0);
    _exit(errno == ENOENT ? 3 : 4);
  }
  describe("exec of a missing file", reap(p));

  p = xfork();
  if (p == 0) {
    for (;;) pause();
  }
  check(kill(p, SIGKILL) == 0);
  describe("SIGKILL", reap(p));

  p = xfork();
  if (p == 0) {
    for (;;) pause();
  }
  check(kill(p, SIGTERM) == 0);
  describe("SIGTERM", reap(p));

  p = xfork();
  if (p == 0) {
    *(volatile int *)16 = 1;
    _exit(0);
  }
  describe("a write to address 16", reap(p));

  p = xfork();
  if (p == 0) abort();
  describe("abort()", reap(p));

  // The child has exited before the parent waits: a zombie holds its status.
  p = xfork();
  if (p == 0) _exit(5);
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, 0);
  describe("waited for after it exited", reap(p));

  int st;
  errno = 0;
  int r = wait(&st);
  say("wait with no children: %d %s", r, ename(errno));
  errno = 0;
  r = waitpid(1, &st, 0);
  say("waitpid of pid 1 (not a child): %d %s", r, ename(errno));
  return 0;
}
