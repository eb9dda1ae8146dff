// Signals from outside while the program waits in read(2) on stdin: USR1's handler has
// SA_RESTART (the read goes on), USR2's has not (the read fails with EINTR), TERM's ends the
// program with 42. Each line it reads is echoed back, so a test can tell that a stopped
// process reads nothing until SIGCONT.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void say(const char *s) { write(1, s, strlen(s)); }
static void on_usr1(int sig) { (void)sig; say("usr1 handler\n"); }
static void on_usr2(int sig) { (void)sig; say("usr2 handler\n"); }
static void on_term(int sig) {
  (void)sig;
  say("term handler\n");
  _exit(42);
}

static void install(int sig, void (*h)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = h;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, 0);
}

int main(void) {
  install(SIGUSR1, on_usr1, SA_RESTART);
  install(SIGUSR2, on_usr2, 0);
  install(SIGTERM, on_term, 0);
  say("ready\n");
  char buf[64];
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0) {
      printf("read: %s\n", strerror(errno));
      fflush(stdout);
      continue;
    }
    if (n == 0) break;
    printf("got %.*s", (int)n, buf);
    fflush(stdout);
  }
  say("end of input\n");
  return 0;
}
