// A signal from outside that the program blocks: it waits in the pending set and acts (its
// default action, termination) once the program unblocks it. The test sends SIGTERM after
// "blocked" and then writes a line to stdin.
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, NULL);
  printf("blocked\n");
  fflush(stdout);
  char line[16];
  if (read(0, line, sizeof line) < 0) return 2;
  sigpending(&pending);
  printf("term pending %d\n", sigismember(&pending, SIGTERM));
  fflush(stdout);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  printf("still running after unblocking\n");
  return 0;
}
