// Waits that block the task: each mode announces (on stdout) that it is about to wait, then
// waits; the test wakes it (a writer, input, a deadline) or kills it. Usage: block MODE [ARG].
//   sleep | poll | read     wait forever (nanosleep 60 s, poll with no timeout, read of a pipe)
//   idle MS                 poll with no descriptors: a pure timeout
//   stdin                   read stdin until its end, print what came
//   pollmany                poll on several pipes, with timeouts
//   fifo-read PATH          mkfifo PATH, open it to read (waits for a writer), print what came
//   fifo-write PATH         open PATH to write, write a line, close
//   state PID               print the state letter /proc/PID/stat shows
//   flood N                 write N numbered lines of 100 bytes to stdout
//   pollfile PATH           poll a regular file opened read-only for reading and writing
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void say(const char *s) {
  write(1, s, strlen(s));
}

static int pollmany(void) {
  int p[3][2];
  for (int i = 0; i < 3; i++)
    if (pipe(p[i]) != 0) return 1;
  struct pollfd f[3];
  for (int i = 0; i < 3; i++) f[i] = (struct pollfd){p[i][0], POLLIN, 0};
  int r = poll(f, 3, 50);
  printf("none ready, 50ms: %d %x %x %x\n", r, f[0].revents, f[1].revents, f[2].revents);
  write(p[2][1], "z", 1);
  r = poll(f, 3, 5000);
  printf("third written: %d %x %x %x\n", r, f[0].revents, f[1].revents, f[2].revents);
  close(p[0][1]);
  r = poll(f, 3, 5000);
  printf("first's writer closed: %d %x %x %x\n", r, f[0].revents, f[1].revents, f[2].revents);
  /* Wait for room on a full pipe: POLLOUT only after a read. */
  fcntl(p[1][1], F_SETFL, O_NONBLOCK);
  char buf[4096] = {0};
  int filled = 0;
  while (write(p[1][1], buf, sizeof buf) > 0) filled++;
  struct pollfd out = {p[1][1], POLLOUT, 0};
  r = poll(&out, 1, 30);
  printf("full pipe, 30ms: %d %x (filled %d pages)\n", r, out.revents, filled);
  read(p[1][0], buf, sizeof buf);
  r = poll(&out, 1, 5000);
  printf("after a read: %d %x\n", r, out.revents);
  /* The other names of readable and writable. */
  struct pollfd norm[2] = {{p[2][0], POLLRDNORM, 0}, {p[2][1], POLLWRNORM | POLLOUT, 0}};
  r = poll(norm, 2, 0);
  printf("rdnorm/wrnorm: %d %x %x\n", r, norm[0].revents, norm[1].revents);
  /* select, pselect6 and ppoll write back the time left. */
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(p[1][0], &rd);
  /* Empty it again (one page was read above): then nothing is readable. */
  for (int i = 0; i < filled - 1; i++) read(p[1][0], buf, sizeof buf);
  struct timeval tv = {0, 20000};
  r = select(p[1][0] + 1, &rd, NULL, NULL, &tv);
  printf("select timed out: %d left %ld.%06ld\n", r, (long)tv.tv_sec, (long)tv.tv_usec);
  /* glibc's ppoll and pselect take a const timeout and copy it: the raw calls show the write-back. */
  struct timespec ts = {5, 0};
  struct pollfd ready = {p[2][0], POLLIN, 0};
  r = syscall(SYS_ppoll, &ready, 1, &ts, NULL, 8);
  printf("ppoll ready at once: %d left between 4 and 5 s: %d\n", r, ts.tv_sec == 4 && ts.tv_nsec > 0);
  ts = (struct timespec){0, 20000000};
  FD_ZERO(&rd);
  FD_SET(p[1][0], &rd);
  r = syscall(SYS_pselect6, p[1][0] + 1, &rd, NULL, NULL, &ts, NULL);
  printf("pselect6 timed out: %d left %ld.%09ld\n", r, (long)ts.tv_sec, ts.tv_nsec);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  /* Each line shows as soon as it is printed: the test watches for them. */
  setvbuf(stdout, NULL, _IONBF, 0);
  if (!strcmp(mode, "sleep")) {
    say("waiting\n");
    struct timespec t = {60, 0};
    nanosleep(&t, NULL);
    say("slept 60 s\n");
    return 0;
  }
  if (!strcmp(mode, "poll") || !strcmp(mode, "read")) {
    int p[2];
    if (pipe(p) != 0) return 1;
    say("waiting\n");
    char c;
    if (mode[0] == 'p') {
      struct pollfd f = {p[0], POLLIN, 0};
      poll(&f, 1, -1);
    } else {
      read(p[0], &c, 1);
    }
    say("woke\n");
    return 0;
  }
  if (!strcmp(mode, "idle") && argc > 2) {
    say("waiting\n");
    int r = poll(NULL, 0, atoi(argv[2]));
    printf("poll: %d\n", r);
    return 0;
  }
  if (!strcmp(mode, "stdin")) {
    say("waiting\n");
    char buf[256];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) printf("read %zd: %.*s\n", n, (int)n, buf);
    printf("end: %zd\n", n);
    return 0;
  }
  if (!strcmp(mode, "pollmany")) return pollmany();
  if (!strcmp(mode, "fifo-read") && argc > 2) {
    if (mkfifo(argv[2], 0600) != 0) return perror("mkfifo"), 1;
    say("waiting\n");
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) return perror("open"), 1;
    char buf[256];
    ssize_t n, total = 0;
    while ((n = read(fd, buf + total, sizeof buf - 1 - total)) > 0) total += n;
    buf[total] = 0;
    printf("got: %s", buf);
    return 0;
  }
  if (!strcmp(mode, "fifo-write") && argc > 2) {
    int fd = open(argv[2], O_WRONLY);
    if (fd < 0) return perror("open"), 1;
    const char *s = "through the fifo\n";
    write(fd, s, strlen(s));
    close(fd);
    return 0;
  }
  if (!strcmp(mode, "flood") && argc > 2) {
    int n = atoi(argv[2]);
    char line[128];
    for (int i = 0; i < n; i++) {
      snprintf(line, sizeof line, "%06d %092d\n", i % 1000000, 0);
      if (write(1, line, 100) != 100) return perror("write"), 1;
    }
    return 0;
  }
  if (!strcmp(mode, "pollfile") && argc > 2) {
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) return perror("open"), 1;
    struct pollfd f = {fd, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM, 0};
    int r = poll(&f, 1, 0);
    printf("regular file: %d %x\n", r, f.revents);
    return 0;
  }
  if (!strcmp(mode, "state") && argc > 2) {
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%s/stat", argv[2]);
    int fd = open(p, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (n <= 0) return perror(p), 1;
    buf[n] = 0;
    char *close_paren = strrchr(buf, ')');
    printf("state of %s: %c\n", argv[2], close_paren ? close_paren[2] : '?');
    return 0;
  }
  fprintf(stderr, "usage: block MODE [ARG]\n");
  return 2;
}
