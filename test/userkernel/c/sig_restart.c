// A read(2) of an empty pipe interrupted by a timer's SIGALRM: without SA_RESTART it fails with
// EINTR; with SA_RESTART it goes on after the handler (which writes a byte into the pipe) and
// returns that byte. The same for a blocking wait4 of a child and for nanosleep, which is never
// restarted (it returns EINTR whatever the flag says).
#include "compat.h"
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

static int fds[2];
static volatile sig_atomic_t fired;

static void on_alarm(int sig) {
  (void)sig;
  fired++;
  ssize_t w = write(fds[1], "x", 1);
  (void)w;
}

static void arm(int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = flags;
  check(sigaction(SIGALRM, &sa, 0) == 0);
  struct itimerval it = {{0, 0}, {0, 100 * 1000}};
  check(setitimer(ITIMER_REAL, &it, 0) == 0);
}

int main(void) {
  check(pipe(fds) == 0);
  char buf[8];

  arm(0);
  errno = 0;
  ssize_t n = read(fds[0], buf, sizeof buf);
  say("read, no SA_RESTART: %d %s, handler ran %d", (int)n, ename(errno), (int)fired);
  n = read(fds[0], buf, sizeof buf);
  say("then the handler's byte: %d '%c'", (int)n, buf[0]);

  fired = 0;
  arm(SA_RESTART);
  errno = 0;
  n = read(fds[0], buf, sizeof buf);
  say("read, SA_RESTART: %d '%c' %s, handler ran %d", (int)n, n > 0 ? buf[0] : '-', ename(errno), (int)fired);

  // wait4 of a child that exits only when told to (after the alarm).
  int go[2];
  check(pipe(go) == 0);
  pid_t p = xfork();
  if (p == 0) {
    close(go[1]);
    char c;
    n = read(go[0], &c, 1);
    _exit(n == 0 ? 11 : 12);
  }
  close(go[0]);
  fired = 0;
  arm(0);
  int st;
  errno = 0;
  pid_t r = waitpid(p, &st, 0);
  say("waitpid, no SA_RESTART: %d %s, handler ran %d", (int)r, ename(errno), (int)fired);
  fired = 0;
  arm(SA_RESTART);
  // The handler has run once the timer fires; then close the pipe so the child exits.
  struct timespec ts = {0, 60 * 1000 * 1000};
  while (nanosleep(&ts, &ts) != 0) {
  }
  close(go[1]);
  r = waitpid(p, &st, 0);
  say("waitpid after: %s, exited %d, handler ran %d", r == p ? "right pid" : "wrong", WEXITSTATUS(st), (int)fired);

  fired = 0;
  arm(SA_RESTART);
  struct timespec long_ = {5, 0}, rem = {0, 0};
  errno = 0;
  int s = nanosleep(&long_, &rem);
  say("nanosleep, SA_RESTART: %d %s, remaining under 5 s %s, handler ran %d", s, ename(errno),
      rem.tv_sec < 5 && (rem.tv_sec > 0 || rem.tv_nsec > 0) ? "yes" : "no", (int)fired);
  return 0;
}
