// fork and wait with every kind of status: exit codes, a signal death, WNOHANG,
// waitpid of a given child, wait of any, ECHILD, waitid with its siginfo, getppid in the
// child, pipes between parent and child, a copy of memory (not shared), vfork, process
// groups and sessions, and children that never become zombies when SIGCHLD is ignored.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int global = 1;

static void show(const char *what, int st) {
  if (WIFEXITED(st))
    printf("%s: exited %d\n", what, WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    printf("%s: killed by %d%s\n", what, WTERMSIG(st), WCOREDUMP(st) ? " (core)" : "");
  else
    printf("%s: other 0x%x\n", what, st);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  pid_t me = getpid();
  int st;

  // 1. exit codes, and the child's copy of memory.
  pid_t c = fork();
  if (c == 0) {
    global = 42;
    _exit(getppid() == me ? 7 : 1);
  }
  if (waitpid(c, &st, 0) != c) perror("waitpid");
  show("exit code", st);
  printf("parent's global still %d\n", global);

  // 2. a signal death.
  c = fork();
  if (c == 0) {
    raise(SIGTERM);
    _exit(0);
  }
  waitpid(c, &st, 0);
  show("raise TERM", st);
  c = fork();
  if (c == 0) {
    kill(getpid(), SIGKILL);
    for (;;) pause();
  }
  waitpid(c, &st, 0);
  show("kill KILL", st);

  // 3. WNOHANG before the child ends, then a blocking wait.
  int p[2];
  pipe(p);
  c = fork();
  if (c == 0) {
    char b;
    close(p[1]);
    read(p[0], &b, 1);  // until the parent closes its end
    _exit(3);
  }
  close(p[0]);
  printf("WNOHANG while running: %d\n", waitpid(c, &st, WNOHANG));
  close(p[1]);
  if (wait(&st) != c) perror("wait");
  show("after the pipe closed", st);

  // 4. nothing left: ECHILD, at once.
  int r = wait(&st);
  printf("wait with no child: %d %s\n", r, strerror(errno));

  // 5. several children, reaped by wait(-1) in any order; the sum of their codes.
  int sum = 0;
  for (int i = 1; i <= 5; i++)
    if (fork() == 0) _exit(i);
  for (int i = 0; i < 5; i++) {
    if (wait(&st) < 0) perror("wait");
    sum += WEXITSTATUS(st);
  }
  printf("sum of 5 codes: %d\n", sum);

  // 6. waitid with its siginfo; WNOWAIT leaves the zombie for the next wait.
  c = fork();
  if (c == 0) _exit(9);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (waitid(P_PID, c, &si, WEXITED | WNOWAIT) != 0) perror("waitid");
  printf("waitid WNOWAIT: signo %d code %d status %d pid ok %d\n", si.si_signo, si.si_code, si.si_status,
         si.si_pid == c);
  memset(&si, 0, sizeof si);
  if (waitid(P_ALL, 0, &si, WEXITED) != 0) perror("waitid");
  printf("waitid: code %d status %d pid ok %d\n", si.si_code, si.si_status, si.si_pid == c);
  c = fork();
  if (c == 0) {
    raise(SIGKILL);
  }
  memset(&si, 0, sizeof si);
  waitid(P_PID, c, &si, WEXITED);
  printf("waitid killed: code %d status %d\n", si.si_code, si.si_status);
  r = waitid(P_ALL, 0, &si, 0);
  printf("waitid bad options: %d %s\n", r, strerror(errno));
  r = waitpid(-1, &st, WNOHANG);
  printf("WNOHANG with no child: %d %s\n", r, strerror(errno));

  // 7. vfork: the parent runs again once the child has ended.
  c = vfork();
  if (c == 0) _exit(8);
  waitpid(c, &st, 0);
  show("vfork _exit", st);

  // 9. wait4's rusage is filled; process groups: a child in a group of its own.
  c = fork();
  if (c == 0) {
    setpgid(0, 0);
    _exit(getpgrp() == getpid() ? 0 : 1);
  }
  struct rusage ru;
  if (wait4(c, &st, 0, &ru) != c) perror("wait4");
  show("own group", st);
  // getsid(0) is 0 natively when the session was made outside our pid namespace (a CI container).
  printf("getpgid(0)==getpgrp: %d, getsid(0)>=0: %d\n", getpgid(0) == getpgrp(), getsid(0) >= 0);
  c = fork();
  if (c == 0) {
    pid_t s = setsid();
    int again = setpgid(0, 0);
    _exit(s == getpid() && getsid(0) == s && again == -1 && errno == EPERM ? 0 : 1);
  }
  waitpid(c, &st, 0);
  show("setsid in a child, then setpgid as session leader", st);
  r = setpgid(99999, 0);
  printf("setpgid of a stranger: %d %s\n", r, strerror(errno));

  // 10. SIGCHLD ignored: children are reaped as they end, and a wait for them finds none.
  signal(SIGCHLD, SIG_IGN);
  c = fork();
  if (c == 0) _exit(4);
  r = waitpid(c, &st, 0);
  printf("SIGCHLD ignored, then waitpid: %d %s\n", r, strerror(errno));
  signal(SIGCHLD, SIG_DFL);
  return 0;
}
