// eventfd: the counter's read and write rules (whole counter, semaphore mode, the limits),
// blocking and O_NONBLOCK, poll's readiness either way, a read woken by another process's
// write, fstat and /proc's view of it: the same output natively and under the userkernel.
#include "compat.h"
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int err(long r) { return r < 0 ? errno : 0; }

/** A child that adds `w` to the eventfd after 100 ms, and exits 0 if the write took. */
static pid_t add_later(int fd, uint64_t w) {
  pid_t c = fork();
  if (c == 0) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    ssize_t r = write(fd, &w, 8);
    _exit(r == 8 ? 0 : 1);
  }
  return c;
}

static int ready(int fd) {
  struct pollfd p = {fd, POLLIN | POLLOUT, 0};
  check(poll(&p, 1, 0) >= 0);
  return p.revents;
}

int main(void) {
  int fd = eventfd(3, EFD_CLOEXEC | EFD_NONBLOCK);
  check(fd >= 0);
  say("cloexec %d, nonblock %d, rdwr %d", fcntl(fd, F_GETFD), (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0,
      (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
  uint64_t v = 0;
  ssize_t n;
  say("short read: %s", ename(err(read(fd, &v, 4))));
  n = read(fd, &v, 8);
  say("read: %ld, value %llu", (long)n, (unsigned long long)v);
  say("empty read: %s", ename(err(read(fd, &v, 8))));
  say("poll empty: in %d out %d", (ready(fd) & POLLIN) != 0, (ready(fd) & POLLOUT) != 0);
  v = 5;
  say("write: %ld", (long)write(fd, &v, 8));
  uint64_t two[2] = {2, 100};
  n = write(fd, two, 16);
  say("write of 16 bytes: %ld %s", (long)n, ename(err(n)));
  say("poll: in %d out %d", (ready(fd) & POLLIN) != 0, (ready(fd) & POLLOUT) != 0);
  v = UINT64_MAX;
  say("write 2^64-1: %s", ename(err(write(fd, &v, 8))));
  v = UINT64_MAX - 6; // the counter holds 5: this fills it to 2^64-2
  say("write to the limit: %ld", (long)write(fd, &v, 8));
  say("poll full: in %d out %d", (ready(fd) & POLLIN) != 0, (ready(fd) & POLLOUT) != 0);
  v = 1;
  say("write past the limit: %s", ename(err(write(fd, &v, 8))));
  say("short write: %s", ename(err(write(fd, &v, 4))));
  uint64_t big[2];
  n = read(fd, big, 16);
  say("read into 16 bytes: %ld, took %llx", (long)n, (unsigned long long)big[0]);
  struct stat st;
  check(fstat(fd, &st) == 0);
  say("fstat mode %o size %ld", st.st_mode, (long)st.st_size);
  char path[64], link[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  n = readlink(path, link, sizeof link - 1);
  check(n > 0);
  link[n] = 0;
  say("link %s", link);
  v = 0x2a;
  check(write(fd, &v, 8) == 8);
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  char info[512];
  int fi = open(path, O_RDONLY);
  check(fi >= 0);
  n = read(fi, info, sizeof info - 1);
  check(n > 0);
  info[n] = 0;
  close(fi);
  char *count = strstr(info, "eventfd-count:");
  check(count != NULL);
  *strchr(count, '\n') = 0;
  say("fdinfo %s", count);
  close(fd);

  // Semaphore mode: one at a time.
  fd = eventfd(2, EFD_SEMAPHORE);
  check(fd >= 0);
  for (int i = 0; i < 2; i++) {
    check(read(fd, &v, 8) == 8);
    say("semaphore read %llu", (unsigned long long)v);
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  say("semaphore empty: %s", ename(err(read(fd, &v, 8))));
  fcntl(fd, F_SETFL, 0);
  // A blocking read waits for another process's write.
  pid_t c = add_later(fd, 7);
  check(read(fd, &v, 8) == 8);
  say("blocking read woke with %llu", (unsigned long long)v);
  int status;
  check(waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // poll waits for it too.
  c = add_later(fd, 1);
  struct pollfd p = {fd, POLLIN, 0};
  int r = poll(&p, 1, 5000);
  say("poll waited: %d, revents in %d", r, (p.revents & POLLIN) != 0);
  check(waitpid(c, &status, 0) == c);
  close(fd);

  say("bad flags: %s", ename(err(syscall(SYS_eventfd2, 0, 0x10))));
  fd = syscall(SYS_eventfd, 9);
  check(fd >= 0);
  check(read(fd, &v, 8) == 8);
  say("eventfd(9) without flags: %llu, flags %o", (unsigned long long)v, fcntl(fd, F_GETFL) & ~0100000);
  say("done");
  return 0;
}
