// poll, ppoll, select and pselect6 on pipes and stdin: readiness, hang-up, invalid
// descriptors, timeouts and errno values. Prints the same lines natively and under moat.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *err(int r) {
  if (r >= 0) return "ok";
  switch (errno) {
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    default: return strerror(errno);
  }
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(void) {
  int p[2];
  if (pipe(p) != 0) return 1;
  struct pollfd f[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {-1, POLLIN, 0}};
  int r = poll(f, 3, 0);
  printf("empty pipe: %d in=%x out=%x neg=%x\n", r, f[0].revents, f[1].revents, f[2].revents);

  write(p[1], "x", 1);
  r = poll(f, 2, 0);
  printf("after write: %d in=%x out=%x\n", r, f[0].revents, f[1].revents);

  char c;
  read(p[0], &c, 1);
  double t0 = now_ms();
  r = poll(f, 1, 60);
  printf("timeout 60ms: %d waited enough %d\n", r, now_ms() - t0 >= 59.0);

  close(p[1]);
  r = poll(f, 1, 1000);
  printf("writer closed: %d in=%x\n", r, f[0].revents);

  /* A descriptor known to be closed (see the select case below for why not a fixed number). */
  int gone = dup(0);
  close(gone);
  struct pollfd bad = {gone, POLLIN, 0};
  r = poll(&bad, 1, 0);
  printf("closed fd: %d revents=%x\n", r, bad.revents);

  r = poll((struct pollfd *)8, 1, 0);
  printf("bad pointer: %s\n", err(r));

  struct timespec ts = {0, 2000000000L};
  r = ppoll(f, 1, &ts, NULL);
  printf("ppoll nsec 2e9: %s\n", err(r));
  ts.tv_nsec = 20000000L;
  int q[2];
  pipe(q);
  struct pollfd g = {q[0], POLLIN, 0};
  t0 = now_ms();
  r = ppoll(&g, 1, &ts, NULL);
  printf("ppoll 20ms: %d waited enough %d\n", r, now_ms() - t0 >= 19.0);

  fd_set rd, wr;
  FD_ZERO(&rd);
  FD_ZERO(&wr);
  FD_SET(q[0], &rd);
  FD_SET(q[1], &wr);
  struct timeval tv = {0, 0};
  r = select(q[1] + 1, &rd, &wr, NULL, &tv);
  printf("select: %d read=%d write=%d\n", r, FD_ISSET(q[0], &rd), FD_ISSET(q[1], &wr));
  write(q[1], "y", 1);
  FD_ZERO(&rd);
  FD_SET(q[0], &rd);
  struct timespec zero = {0, 0};
  r = pselect(q[0] + 1, &rd, NULL, NULL, &zero, NULL);
  printf("pselect after write: %d read=%d\n", r, FD_ISSET(q[0], &rd));
  /* A descriptor known to be closed: a fixed number such as 77 may be open in a child that the
   * test runner (or CI) started with inherited descriptors. */
  int closed = dup(0);
  close(closed);
  FD_ZERO(&rd);
  FD_SET(closed, &rd);
  tv.tv_sec = 0;
  tv.tv_usec = 0;
  r = select(closed + 1, &rd, NULL, NULL, &tv);
  printf("select closed fd: %s\n", err(r));
  /* Linux folds whole seconds out of tv_usec: 1000000 us is a valid one-second timeout. */
  t0 = now_ms();
  r = syscall(SYS_select, 0, NULL, NULL, NULL, &(struct timeval){0, 1000000});
  printf("select usec 1e6: %s waited a second %d\n", err(r), now_ms() - t0 >= 999.0);
  r = syscall(SYS_select, 0, NULL, NULL, NULL, &(struct timeval){-1, 0});
  printf("select negative: %s\n", err(r));

  struct pollfd in = {0, POLLIN, 0};
  r = poll(&in, 1, 5000);
  char buf[64];
  ssize_t n = read(0, buf, sizeof buf);
  printf("stdin: %d in=%d read %zd\n", r, (in.revents & POLLIN) != 0, n);
  return 0;
}
