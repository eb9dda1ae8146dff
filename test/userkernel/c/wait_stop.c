// Job control as wait reports it: a child that stops itself (SIGSTOP) and one stopped from
// outside (SIGTSTP, in a process group of its own) are WIFSTOPPED under WUNTRACED only, SIGCONT makes them WIFCONTINUED under
// WCONTINUED, each state change is reported once; WNOHANG returns 0 for a live child that has
// nothing to report and the child's pid once it has exited.
#include "compat.h"
#include <signal.h>
#include <sys/wait.h>

/** waitpid(pid, options) and what it returned, against `want` (the child, or 0). */
static void describe(const char *what, pid_t pid, int options, pid_t want) {
  int st = 0;
  pid_t got = waitpid(pid, &st, options);
  if (got == 0 && want == 0) {
    say("%s: nothing to report", what);
    return;
  }
  if (got != want) {
    say("%s: waitpid returned %s", what, got == 0 ? "0" : got < 0 ? ename(errno) : "another pid");
    return;
  }
  if (WIFEXITED(st)) say("%s: exited %d", what, WEXITSTATUS(st));
  else if (WIFSIGNALED(st)) say("%s: killed by signal %d", what, WTERMSIG(st));
  else if (WIFSTOPPED(st)) say("%s: stopped by signal %d", what, WSTOPSIG(st));
  else if (WIFCONTINUED(st)) say("%s: continued", what);
  else say("%s: other status %#x", what, st);
}

int main(void) {
  int st;
  int go[2];
  check(pipe(go) == 0);
  pid_t p = xfork();
  if (p == 0) {
    close(go[1]);
    raise(SIGSTOP);
    char c;
    // Continued: wait for the parent's word, then exit 7.
    check(read(go[0], &c, 1) == 1);
    _exit(7);
  }
  close(go[0]);
  describe("WUNTRACED after raise(SIGSTOP)", p, WUNTRACED, p);
  describe("WNOHANG|WUNTRACED again (reported once)", p, WNOHANG | WUNTRACED, 0);
  check(kill(p, SIGCONT) == 0);
  describe("WCONTINUED after SIGCONT", p, WCONTINUED, p);
  describe("WNOHANG while it waits on the pipe", p, WNOHANG | WCONTINUED | WUNTRACED, 0);
  check(write(go[1], "x", 1) == 1);
  describe("plain wait", p, 0, p);

  // Stopped from outside by SIGTSTP; a plain wait does not report the stop, so WNOHANG
  // without WUNTRACED says 0 while it is stopped.
  check(pipe(go) == 0);
  p = xfork();
  if (p == 0) {
    // A group of its own, whose parent is in another group of the session: not an orphaned
    // group, to which Linux would not deliver SIGTSTP at all (a test runner's group may be one).
    setpgid(0, 0);
    close(go[1]);
    char c;
    check(read(go[0], &c, 1) == 1);
    _exit(8);
  }
  setpgid(p, p);
  close(go[0]);
  check(kill(p, SIGTSTP) == 0);
  describe("WUNTRACED after SIGTSTP from the parent", p, WUNTRACED, p);
  describe("WNOHANG without WUNTRACED while stopped", p, WNOHANG, 0);
  check(kill(p, SIGCONT) == 0);
  describe("WCONTINUED", p, WCONTINUED, p);
  check(write(go[1], "x", 1) == 1);
  describe("plain wait", p, 0, p);

  // A stopped child killed with SIGKILL dies without being continued first.
  p = xfork();
  if (p == 0) {
    raise(SIGSTOP);
    _exit(0);
  }
  describe("WUNTRACED", p, WUNTRACED, p);
  check(kill(p, SIGKILL) == 0);
  describe("SIGKILL while stopped", p, 0, p);

  // WNOHANG on an exited child reaps it.
  p = xfork();
  if (p == 0) _exit(9);
  pid_t got;
  while ((got = waitpid(p, &st, WNOHANG)) == 0) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, 0);
  }
  say("WNOHANG polled until it exited: %s, exited %d", got == p ? "right pid" : "wrong pid", WEXITSTATUS(st));
  return 0;
}
