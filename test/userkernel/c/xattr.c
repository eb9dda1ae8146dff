// Extended attributes on tmpfs (/dev/shm, natively too): set, get, list and remove with
// XATTR_CREATE/REPLACE, the size rules (0 asks, short is ERANGE, names and values too long),
// the namespaces (user. by permission and only on files and directories, trusted. for root,
// unknown ones), by path, without following a symlink and by descriptor.
#include "compat.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>

static int err(long r) { return r < 0 ? errno : 0; }

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/** The names, sorted: the order listxattr gives them in is the file system's own. */
static void list(const char *label, const char *path) {
  char b[256];
  ssize_t n = listxattr(path, b, sizeof b);
  char *names[16];
  int k = 0;
  for (ssize_t i = 0; i < n && k < 16; i += (ssize_t)strlen(b + i) + 1) names[k++] = b + i;
  qsort(names, (size_t)k, sizeof names[0], by_name);
  char out[256] = {0};
  for (int i = 0; i < k; i++) {
    strcat(out, names[i]);
    strcat(out, ",");
  }
  say("%s: %ld [%s]", label, (long)n, out);
}

int main(void) {
  char f[64], l[64];
  snprintf(f, sizeof f, "/dev/shm/moat-xattr-%d", getpid());
  snprintf(l, sizeof l, "/dev/shm/moat-xattr-link-%d", getpid());
  int fd = open(f, O_CREAT | O_RDWR, 0644);
  check(fd >= 0);
  say("set: %s", ename(err(setxattr(f, "user.one", "1", 1, 0))));
  say("create existing: %s", ename(err(setxattr(f, "user.one", "x", 1, XATTR_CREATE))));
  say("replace absent: %s", ename(err(setxattr(f, "user.two", "x", 1, XATTR_REPLACE))));
  say("replace: %s", ename(err(setxattr(f, "user.one", "uno", 3, XATTR_REPLACE))));
  say("bad flags: %s", ename(err(setxattr(f, "user.one", "x", 1, 4))));
  say("fset: %s", ename(err(fsetxattr(fd, "user.two", "22", 2, XATTR_CREATE))));
  say("empty value: %s", ename(err(setxattr(f, "user.empty", "", 0, 0))));
  char v[64] = {0};
  say("size: %ld", (long)getxattr(f, "user.one", NULL, 0));
  ssize_t n = getxattr(f, "user.one", v, sizeof v);
  say("get: %ld [%.*s]", (long)n, (int)(n > 0 ? n : 0), v);
  say("short buffer: %s", ename(err(getxattr(f, "user.one", v, 2))));
  say("absent: %s", ename(err(getxattr(f, "user.none", v, sizeof v))));
  n = fgetxattr(fd, "user.two", v, sizeof v);
  say("fget: %ld [%.*s]", (long)n, (int)(n > 0 ? n : 0), v);
  say("empty: %ld", (long)getxattr(f, "user.empty", v, sizeof v));
  list("list", f);
  say("list size: %ld", (long)listxattr(f, NULL, 0));
  char tiny[4];
  say("list short: %s", ename(err(listxattr(f, tiny, sizeof tiny))));
  char longname[300] = "user.";
  memset(longname + 5, 'n', 260);
  longname[265] = 0;
  say("long name: %s", ename(err(setxattr(f, longname, "x", 1, 0))));
  say("empty name: %s", ename(err(setxattr(f, "", "x", 1, 0))));
  static char big[65537];
  say("value too big: %s", ename(err(setxattr(f, "user.big", big, sizeof big, 0))));
  say("unknown namespace: %s", ename(err(setxattr(f, "foo.bar", "x", 1, 0))));
  say("no namespace: %s", ename(err(setxattr(f, "plain", "x", 1, 0))));
  say("trusted as root: %s", ename(err(setxattr(f, "trusted.t", "t", 1, 0))));
  list("with trusted", f);
  say("remove: %s", ename(err(removexattr(f, "user.empty"))));
  say("remove absent: %s", ename(err(removexattr(f, "user.empty"))));
  say("fremove: %s", ename(err(fremovexattr(fd, "user.two"))));
  list("after removes", f);
  check(symlink(f, l) == 0);
  say("lset on a symlink: %s", ename(err(lsetxattr(l, "user.x", "x", 1, 0))));
  say("lget on a symlink: %s", ename(err(lgetxattr(l, "user.x", v, sizeof v))));
  n = getxattr(l, "user.one", v, sizeof v);
  say("get through the symlink: %ld", (long)n);
  say("missing file: %s", ename(err(getxattr("/dev/shm/moat-no-such", "user.one", v, sizeof v))));
  pid_t c = fork();
  if (c == 0) {
    check(setuid(1000) == 0);
    say("uid 1000 get: %ld", (long)getxattr(f, "user.one", v, sizeof v));
    say("uid 1000 set: %s", ename(err(setxattr(f, "user.one", "x", 1, 0))));
    say("uid 1000 trusted get: %s", ename(err(getxattr(f, "trusted.t", v, sizeof v))));
    list("uid 1000 list", f);
    _exit(0);
  }
  int st;
  check(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  int p[2];
  check(pipe(p) == 0);
  say("proc get: %s", ename(err(getxattr("/proc/self/status", "user.x", v, sizeof v))));
  unlink(l);
  unlink(f);
  say("done");
  return 0;
}
