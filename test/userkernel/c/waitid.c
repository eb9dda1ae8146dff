// waitid(2): P_PID, P_ALL and P_PGID; the siginfo it fills (si_signo SIGCHLD, si_code
// CLD_EXITED / CLD_KILLED / CLD_STOPPED / CLD_CONTINUED, si_status, si_pid); WNOWAIT leaves the
// zombie for a second wait; WNOHANG with nothing to report zeroes si_pid; ECHILD at the end.
#include "compat.h"
#include <signal.h>
#include <sys/wait.h>

static const char *code(int c) {
  switch (c) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_DUMPED: return "CLD_DUMPED";
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    default: return "?";
  }
}

static void show(const char *what, int r, siginfo_t *si, pid_t want) {
  if (r != 0) {
    say("%s: %s", what, ename(errno));
    return;
  }
  say("%s: signo %d code %s status %d pid %s", what, si->si_signo, code(si->si_code), si->si_status,
      si->si_pid == want ? "right" : si->si_pid == 0 ? "0" : "wrong");
}

int main(void) {
  siginfo_t si;
  pid_t p = xfork();
  if (p == 0) _exit(3);
  memset(&si, 0, sizeof si);
  show("P_PID WEXITED|WNOWAIT", waitid(P_PID, p, &si, WEXITED | WNOWAIT), &si, p);
  memset(&si, 0, sizeof si);
  show("P_PID WEXITED again", waitid(P_PID, p, &si, WEXITED), &si, p);

  p = xfork();
  if (p == 0) {
    for (;;) pause();
  }
  memset(&si, 0xff, sizeof si);
  show("WNOHANG while it runs", waitid(P_PID, p, &si, WEXITED | WNOHANG), &si, p);
  check(kill(p, SIGSTOP) == 0);
  memset(&si, 0, sizeof si);
  show("WSTOPPED", waitid(P_PID, p, &si, WSTOPPED), &si, p);
  check(kill(p, SIGCONT) == 0);
  memset(&si, 0, sizeof si);
  show("WCONTINUED", waitid(P_PID, p, &si, WCONTINUED), &si, p);
  check(kill(p, SIGHUP) == 0);
  memset(&si, 0, sizeof si);
  show("P_ALL after SIGHUP", waitid(P_ALL, 0, &si, WEXITED), &si, p);

  // P_PGID: a child in a process group of its own.
  int go[2];
  check(pipe(go) == 0);
  p = xfork();
  if (p == 0) {
    setpgid(0, 0);
    close(go[1]);
    char c;
    check(read(go[0], &c, 1) == 0);
    _exit(4);
  }
  setpgid(p, p);
  close(go[0]);
  close(go[1]);
  memset(&si, 0, sizeof si);
  show("P_PGID", waitid(P_PGID, p, &si, WEXITED), &si, p);

  memset(&si, 0, sizeof si);
  errno = 0;
  show("no children left", waitid(P_ALL, 0, &si, WEXITED), &si, 0);
  errno = 0;
  show("no options", waitid(P_ALL, 0, &si, 0), &si, 0);
  return 0;
}
