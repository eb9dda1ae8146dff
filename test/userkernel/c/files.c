// File syscalls and their errors, printed so that a native run (under a prefix directory)
// and a userkernel run (prefix "") print the same lines. Nothing printed depends on inode
// numbers, times, the host or the prefix. Usage: files PREFIX
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *prefix;
static char pbuf[4][PATH_MAX];
static int pslot;

/* The host path of a container path. */
static const char *P(const char *p) {
  char *b = pbuf[pslot++ % 4];
  snprintf(b, PATH_MAX, "%s%s", prefix, p);
  return b;
}

static void report(const char *what, long r) {
  if (r < 0) printf("%s: %s\n", what, strerrorname_np(errno));
  else printf("%s: %ld\n", what, r);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Names and types of a directory, sorted, from raw getdents64. */
static void listdir(const char *path) {
  int fd = open(P(path), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return report("listdir open", -1);
  char buf[512];
  char *names[64];
  int n = 0;
  for (;;) {
    long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (got <= 0) break;
    for (long off = 0; off < got;) {
      struct { unsigned long ino; long off; unsigned short reclen; unsigned char type; char name[]; } *d = (void *)(buf + off);
      if (n < 64 && asprintf(&names[n], "%s/%d", d->name, d->type) > 0) n++;
      off += d->reclen;
    }
  }
  close(fd);
  qsort(names, n, sizeof names[0], cmp);
  printf("dir %s:", path);
  for (int i = 0; i < n; i++) printf(" %s", names[i]), free(names[i]);
  printf("\n");
}

static void statline(const char *what, const char *path, int follow) {
  struct stat st;
  int r = follow ? stat(P(path), &st) : lstat(P(path), &st);
  if (r < 0) return report(what, -1);
  printf("%s: type %o mode %o size %ld uid %d gid %d\n", what, st.st_mode & S_IFMT, st.st_mode & 07777,
         S_ISDIR(st.st_mode) ? 0L : (long)st.st_size, st.st_uid, st.st_gid);
}

/* A write to a pipe without readers: EPIPE while SIGPIPE is ignored, death by it after. */
static int sigpipe(void) {
  int p[2];
  if (pipe(p) < 0) return 1;
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  report("write ignored", write(p[1], "x", 1));
  fflush(stdout);
  signal(SIGPIPE, SIG_DFL);
  write(p[1], "x", 1);
  printf("survived SIGPIPE\n");
  return 0;
}

int main(int argc, char **argv) {
  prefix = argc > 1 ? argv[1] : "";
  if (argc > 2 && strcmp(argv[2], "sigpipe") == 0) return sigpipe();
  char buf[256];
  umask(022);

  /* Reading a file of the image. */
  int fd = open(P("/data/hello.txt"), O_RDONLY);
  report("open hello", fd >= 0 ? 0 : -1);
  long n = read(fd, buf, sizeof buf - 1);
  report("read hello", n);
  if (n > 0) buf[n] = 0, printf("content: %s", buf);
  report("lseek set 6", lseek(fd, 6, SEEK_SET));
  n = read(fd, buf, 5);
  if (n > 0) buf[n] = 0, printf("after seek: %s\n", buf);
  report("lseek end", lseek(fd, 0, SEEK_END));
  report("pread 0", pread(fd, buf, 5, 0));
  report("pread bad pointer", syscall(SYS_pread64, fd, (void *)8, 4, 0));
  struct stat st;
  report("fstat", fstat(fd, &st));
  printf("fstat size %ld type %o\n", (long)st.st_size, st.st_mode & S_IFMT);
  report("lseek bad whence", lseek(fd, 0, 99));
  report("lseek negative", lseek(fd, -10, SEEK_SET));
  report("write to O_RDONLY", write(fd, "x", 1));
  char *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
  report("mmap file", m == MAP_FAILED ? -1 : 0);
  if (m != MAP_FAILED) printf("mapped: %.11s", m), munmap(m, 4096);
  report("mmap shared writable on O_RDONLY", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0);
  report("close", close(fd));
  report("close again", close(fd));
  report("read closed", read(fd, buf, 1));
  report("fstat -1", fstat(-1, &st));

  /* Symlinks. */
  n = readlink(P("/data/link"), buf, sizeof buf);
  report("readlink", n);
  if (n > 0) printf("link -> %.*s\n", (int)n, buf);
  report("readlink short", readlink(P("/data/link"), buf, 3));
  report("readlink file", readlink(P("/data/hello.txt"), buf, sizeof buf));
  statline("stat link", "/data/link", 1);
  statline("lstat link", "/data/link", 0);

  /* Creating, writing, renaming, removing. */
  report("mkdir", mkdir(P("/work/d"), 0750));
  report("mkdir again", mkdir(P("/work/d"), 0750));
  statline("stat d", "/work/d", 1);
  fd = open(P("/work/d/f"), O_CREAT | O_WRONLY | O_TRUNC, 0666);
  report("creat f", fd >= 0 ? 0 : -1);
  report("write f", write(fd, "hello world\n", 12));
  report("lseek f", lseek(fd, 100, SEEK_SET));
  report("write f at 100", write(fd, "end\n", 4));
  report("ftruncate f", ftruncate(fd, 50));
  report("fsync f", fsync(fd));
  close(fd);
  statline("stat f", "/work/d/f", 1);
  report("open excl", open(P("/work/d/f"), O_CREAT | O_EXCL | O_WRONLY, 0600));
  fd = open(P("/work/d/f"), O_RDWR | O_APPEND);
  report("getfl append", fcntl(fd, F_GETFL));
  report("append", write(fd, "tail", 4));
  report("append pos", lseek(fd, 0, SEEK_CUR));
  close(fd);
  report("rename", rename(P("/work/d/f"), P("/work/d/g")));
  report("open old name", open(P("/work/d/f"), O_RDONLY));
  fd = open(P("/work/d/g"), O_RDONLY);
  n = pread(fd, buf, 12, 0);
  if (n > 0) buf[n] = 0, printf("renamed content: %s", buf);
  close(fd);
  report("symlink", symlink("g", P("/work/d/s")));
  report("link", link(P("/work/d/g"), P("/work/d/h")));
  statline("stat h", "/work/d/h", 1);
  listdir("/work/d");
  report("rmdir nonempty", rmdir(P("/work/d")));
  report("unlink dir", unlink(P("/work/d")));
  report("unlink g", unlink(P("/work/d/g")));
  report("unlink h", unlink(P("/work/d/h")));
  report("unlink s", unlink(P("/work/d/s")));
  report("unlink gone", unlink(P("/work/d/g")));
  report("rmdir", rmdir(P("/work/d")));
  report("chmod", chmod(P("/data/hello.txt"), 0600));
  statline("stat chmod", "/data/hello.txt", 1);

  /* *at calls relative to a directory descriptor. */
  int dfd = open(P("/data"), O_RDONLY | O_DIRECTORY);
  report("open dir", dfd >= 0 ? 0 : -1);
  fd = openat(dfd, "hello.txt", O_RDONLY);
  report("openat", fd >= 0 ? 0 : -1);
  close(fd);
  report("fstatat", fstatat(dfd, "link", &st, AT_SYMLINK_NOFOLLOW));
  printf("fstatat type %o\n", st.st_mode & S_IFMT);
  report("read dir", read(dfd, buf, 10));
  report("openat on file fd", openat(open(P("/data/hello.txt"), O_RDONLY), "x", O_RDONLY));
  report("mkdirat", mkdirat(dfd, "sub", 0700));
  report("unlinkat removedir", unlinkat(dfd, "sub", AT_REMOVEDIR));
  close(dfd);

  /* Errors for bad input. */
  report("open bad pointer", syscall(SYS_open, (char *)8, O_RDONLY));
  report("stat bad buffer", stat(P("/data/hello.txt"), (struct stat *)8));
  report("open missing", open(P("/data/nope"), O_RDONLY));
  report("open through file", open(P("/data/hello.txt/x"), O_RDONLY));
  report("mkdir under file", mkdir(P("/data/hello.txt/d"), 0755));
  report("open dir for write", open(P("/data"), O_WRONLY));
  report("open dir O_CREAT", open(P("/data/"), O_CREAT | O_WRONLY, 0644));
  report("O_DIRECTORY on file", open(P("/data/hello.txt"), O_RDONLY | O_DIRECTORY));
  report("rename into self", rename(P("/data"), P("/data/x")));
  report("rmdir missing", rmdir(P("/nope")));
  report("empty path", open("", O_RDONLY));
  report("readlink bad size", readlink(P("/data/link"), buf, 0));

  /* Working directory. */
  char real[PATH_MAX];
  if (!realpath(*prefix ? prefix : "/", real)) return 1;
  report("chdir", chdir(P("/data")));
  if (getcwd(buf, sizeof buf)) printf("cwd: %s\n", buf + (strcmp(real, "/") ? strlen(real) : 0));
  report("getcwd small", getcwd(buf, 2) ? 0 : -1);
  report("chdir file", chdir(P("/data/hello.txt")));
  fd = open("hello.txt", O_RDONLY);
  report("open relative", fd >= 0 ? 0 : -1);
  report("fchdir file", fchdir(fd));
  close(fd);

  /* Pipes. */
  int p[2];
  report("pipe", pipe(p));
  report("pipe write", write(p[1], "through", 7));
  n = read(p[0], buf, sizeof buf);
  report("pipe read", n);
  close(p[1]);
  report("pipe eof", read(p[0], buf, sizeof buf));
  report("pipe lseek", lseek(p[0], 0, SEEK_SET));
  close(p[0]);
  report("dup2", dup2(1, 9));
  report("fcntl getfd", fcntl(9, F_GETFD));
  report("fcntl dupfd cloexec", fcntl(9, F_DUPFD_CLOEXEC, 20));
  report("fcntl getfd 20", fcntl(20, F_GETFD));
  report("close_range", syscall(SYS_close_range, 9, 20, 0));
  report("closed by close_range", fcntl(20, F_GETFD));

  /* chroot narrows "/" for the rest of the program; ".." stops at the new root. */
  report("chroot", chroot(P("/data")));
  report("chdir /", chdir("/"));
  fd = open("/hello.txt", O_RDONLY);
  report("open in chroot", fd >= 0 ? 0 : -1);
  close(fd);
  report("open above chroot", open("/../../data/hello.txt", O_RDONLY));
  if (getcwd(buf, sizeof buf)) printf("cwd in chroot: %s\n", buf);
  return 0;
}
