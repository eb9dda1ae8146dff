// Pipes between a parent and two children: the first child writes the numbers 1..1000 into
// pipe A, the second reads A, doubles each number and writes the result into pipe B, and the
// parent reads B to the end (EOF once both children have closed their ends) and sums. Then a
// writer whose pipe has no reader left dies of SIGPIPE, or gets EPIPE with SIGPIPE ignored;
// a 64 KiB write into a full pipe waits for the reader; dup2 puts a pipe on stdout for a child.
#include <signal.h>
#include <sys/wait.h>
#include "compat.h"

static int readline(int fd, char *buf, int max) {
  int n = 0;
  while (n < max - 1) {
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r <= 0) break;
    if (c == '\n') break;
    buf[n++] = c;
  }
  buf[n] = 0;
  return n;
}

int main(void) {
  int a[2], b[2];
  check(pipe(a) == 0 && pipe(b) == 0);
  pid_t w = xfork();
  if (w == 0) {
    close(a[0]), close(b[0]), close(b[1]);
    char line[32];
    for (int i = 1; i <= 1000; i++) {
      int n = snprintf(line, sizeof line, "%d\n", i);
      check(write(a[1], line, n) == n);
    }
    _exit(0);
  }
  pid_t m = xfork();
  if (m == 0) {
    close(a[1]), close(b[0]);
    char line[32];
    int count = 0;
    while (readline(a[0], line, sizeof line) > 0) {
      char out[32];
      int n = snprintf(out, sizeof out, "%d\n", 2 * atoi(line));
      check(write(b[1], out, n) == n);
      count++;
    }
    _exit(count == 1000 ? 0 : 1);
  }
  close(a[0]), close(a[1]), close(b[1]);
  char line[32];
  long sum = 0;
  int lines = 0;
  while (readline(b[0], line, sizeof line) > 0) sum += atol(line), lines++;
  int st1, st2;
  check(waitpid(w, &st1, 0) == w && waitpid(m, &st2, 0) == m);
  say("parent read %d lines summing to %ld; children exited %d and %d", lines, sum, WEXITSTATUS(st1),
      WEXITSTATUS(st2));
  close(b[0]);

  // No reader: SIGPIPE kills the writer; ignored, the write fails with EPIPE.
  int p[2];
  check(pipe(p) == 0);
  close(p[0]);
  pid_t c = xfork();
  if (c == 0) {
    ssize_t r = write(p[1], "x", 1);
    _exit(r < 0 ? 2 : 3);
  }
  int st;
  check(waitpid(c, &st, 0) == c);
  say("write with no reader: %s %d", WIFSIGNALED(st) ? "killed by signal" : "exited", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  signal(SIGPIPE, SIG_IGN);
  errno = 0;
  ssize_t r = write(p[1], "x", 1);
  say("with SIGPIPE ignored: %d %s", (int)r, ename(errno));
  close(p[1]);

  // A child's stdout on a pipe (dup2), and a write bigger than the pipe's buffer.
  check(pipe(p) == 0);
  c = xfork();
  if (c == 0) {
    dup2(p[1], 1);
    close(p[0]), close(p[1]);
    static char big[256 * 1024];
    memset(big, 'z', sizeof big);
    ssize_t n = write(1, big, sizeof big);
    _exit(n == (ssize_t)sizeof big ? 0 : 1);
  }
  close(p[1]);
  long total = 0;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) total += n;
  check(waitpid(c, &st, 0) == c);
  say("256 KiB written through a child's stdout: read %ld bytes, child exited %d", total, WEXITSTATUS(st));
  return 0;
}
