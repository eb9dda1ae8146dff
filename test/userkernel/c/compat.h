// Shared by the compatibility programs (compat.test.ts): each prints with one write(2) per
// line, so lines from several processes never interleave inside a line and nothing sits in a
// stdio buffer that fork would copy; check() ends the program with a line naming what failed.
#ifndef COMPAT_H
#define COMPAT_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t w = write(1, buf, (size_t)n);
  (void)w;
}

/** errno's symbolic name for the few a test expects, else its number. */
static const char *ename(int e) {
  switch (e) {
    case 0: return "0";
    case EINTR: return "EINTR";
    case EAGAIN: return "EAGAIN";
    case ECHILD: return "ECHILD";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EPIPE: return "EPIPE";
    case EINVAL: return "EINVAL";
    case ESRCH: return "ESRCH";
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EBADF: return "EBADF";
    case EBUSY: return "EBUSY";
    case EDEADLK: return "EDEADLK";
    case ESPIPE: return "ESPIPE";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EISDIR: return "EISDIR";
    case ENODEV: return "ENODEV";
    case ENODATA: return "ENODATA";
    case ENOMEM: return "ENOMEM";
    case ENOTDIR: return "ENOTDIR";
    case ERANGE: return "ERANGE";
    case E2BIG: return "E2BIG";
    case EEXIST: return "EEXIST";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    default: {
      static char b[16];
      snprintf(b, sizeof b, "errno%d", e);
      return b;
    }
  }
}

#define check(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      say("FAILED line %d: %s (errno %s)", __LINE__, #cond, ename(errno));        \
      _exit(99);                                                                  \
    }                                                                             \
  } while (0)

/**
 * fork() that ends the program if it fails: a -1 taken for a child's pid would make a later
 * kill(pid, sig) a kill(-1, sig), every process the caller may signal.
 */
__attribute__((unused)) static pid_t xfork_at(int line) {
  pid_t p = fork();
  if (p < 0) {
    say("FAILED line %d: fork() (errno %s)", line, ename(errno));
    _exit(99);
  }
  return p;
}
#define xfork() xfork_at(__LINE__)

#endif
