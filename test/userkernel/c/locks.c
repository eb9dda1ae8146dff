// Advisory file locks between processes, and pipe sizes:
// - flock: exclusive against another description (EWOULDBLOCK with LOCK_NB), shared with
//   shared, shared by the descriptions fork copies, a blocked LOCK_EX that gets the lock once
//   the holder's last descriptor closes;
// - POSIX record locks: F_GETLK names the holder's range and pid, a fork's child inherits
//   none, an owner's own locks never conflict, neighbours of one type merge and an unlock
//   splits them, F_SETLKW waits and is woken by the holder's close of any descriptor of the
//   file, EDEADLK for a cycle of two waiters, EINTR from a handler without SA_RESTART, lockf;
// - OFD locks: two descriptions of one process conflict, they conflict with POSIX locks,
//   F_OFD_GETLK reports pid -1, they go with the description's close;
// - the errors: a lock type the descriptor's mode does not allow, bad type or whence, a
//   negative start;
// - F_GETPIPE_SZ/F_SETPIPE_SZ: 64 KiB by default, rounded up to a power of two of at least a
//   page, EBUSY below what the pipe holds, and a non-blocking write fills the new size.
#include "compat.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

static char path[64];

static int lk(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock f = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  return fcntl(fd, cmd, &f);
}

/** F_GETLK (or F_OFD_GETLK) for [start, start+len) as `type`: prints what it finds. */
static void show(const char *who, int fd, int cmd, short type, off_t start, off_t len, pid_t parent) {
  struct flock f = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  check(fcntl(fd, cmd, &f) == 0);
  if (f.l_type == F_UNLCK) {
    say("%s getlk %ld+%ld: unlocked", who, (long)start, (long)len);
    return;
  }
  const char *p = f.l_pid == parent ? "parent" : f.l_pid == -1 ? "-1" : "other";
  say("%s getlk %ld+%ld: %s %ld+%ld pid %s", who, (long)start, (long)len, f.l_type == F_WRLCK ? "WR" : "RD",
      (long)f.l_start, (long)f.l_len, p);
}

/** The child waits for one byte on `fd` (a go signal from the parent). */
static void await_byte(int fd) {
  char c;
  check(read(fd, &c, 1) == 1);
}

static void send_byte(int fd) { check(write(fd, "x", 1) == 1); }

/** Wait until `pid` sleeps (state S in /proc/<pid>/stat): it is blocked in its lock call. */
static void until_sleeping(pid_t pid) {
  char p[64], buf[256];
  snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
  for (int i = 0; i < 2000; i++) {
    int fd = open(p, O_RDONLY);
    check(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    check(n > 0);
    buf[n] = 0;
    char *r = strrchr(buf, ')');
    if (r && r[2] == 'S') return;
    usleep(5000);
  }
  check(!"the child went to sleep in its lock call");
}

static int reap(pid_t p) {
  int st;
  check(waitpid(p, &st, 0) == p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void on_alarm(int s) { (void)s; }

static void test_flock(void) {
  int a = open(path, O_RDWR);
  check(a >= 0);
  check(flock(a, LOCK_EX) == 0);
  check(flock(a, LOCK_EX) == 0);  // again: no change
  int go[2];
  check(pipe(go) == 0);
  pid_t c = xfork();
  if (c == 0) {
    int b = open(path, O_RDONLY);
    check(b >= 0);
    errno = 0;
    check(flock(b, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK);
    check(flock(b, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK);
    // `a` is the parent's description, copied by fork: its lock is ours too.
    check(flock(a, LOCK_EX | LOCK_NB) == 0);
    say("child: flock EX and SH refused, the inherited description's lock shared");
    close(a);  // the parent's close is now the description's last
    send_byte(go[1]);
    check(flock(b, LOCK_EX) == 0);  // waits for the last close of the description
    say("child: flock EX after the description's last close");
    check(flock(b, LOCK_UN) == 0);
    _exit(0);
  }
  await_byte(go[0]);
  until_sleeping(c);
  say("parent: closing the description's last descriptor");
  close(a);
  check(reap(c) == 0);
  // Shared with shared.
  int x = open(path, O_RDONLY), y = open(path, O_RDONLY);
  check(flock(x, LOCK_SH) == 0 && flock(y, LOCK_SH | LOCK_NB) == 0);
  errno = 0;
  check(flock(y, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK);
  check(flock(x, LOCK_UN) == 0 && flock(y, LOCK_EX | LOCK_NB) == 0);
  say("flock: SH with SH, EX refused beside SH, EX once the other is gone");
  errno = 0;
  check(flock(y, 0) == -1 && errno == EINVAL);
  close(x), close(y);
  close(go[0]), close(go[1]);
}

static void test_posix(void) {
  pid_t me = getpid();
  int fd = open(path, O_RDWR);
  check(fd >= 0);
  check(lk(fd, F_SETLK, F_WRLCK, 0, 10) == 0);
  check(lk(fd, F_SETLK, F_RDLCK, 20, 10) == 0);
  check(lk(fd, F_SETLK, F_RDLCK, 30, 10) == 0);  // merges with 20+10
  show("parent", fd, F_GETLK, F_WRLCK, 0, 100, me);  // its own locks never conflict
  int go[2], back[2];
  check(pipe(go) == 0 && pipe(back) == 0);
  pid_t c = xfork();
  if (c == 0) {
    // The fork's child inherits none of the parent's locks: it sees them as another's.
    show("child", fd, F_GETLK, F_RDLCK, 5, 1, me);
    show("child", fd, F_GETLK, F_WRLCK, 25, 1, me);
    show("child", fd, F_GETLK, F_RDLCK, 25, 1, me);
    show("child", fd, F_GETLK, F_WRLCK, 10, 10, me);
    errno = 0;
    check(lk(fd, F_SETLK, F_RDLCK, 5, 1) == -1 && (errno == EAGAIN || errno == EACCES));
    check(lk(fd, F_SETLK, F_WRLCK, 10, 10) == 0);
    check(lk(fd, F_SETLK, F_RDLCK, 25, 5) == 0);  // read beside read
    send_byte(back[1]);
    await_byte(go[0]);  // the parent unlocked 22+2
    show("child", fd, F_GETLK, F_WRLCK, 20, 20, me);
    show("child", fd, F_GETLK, F_WRLCK, 22, 2, me);
    // Wait for the write lock the parent holds on 0+10.
    send_byte(back[1]);
    check(lk(fd, F_SETLKW, F_WRLCK, 0, 1) == 0);
    say("child: F_SETLKW got 0+1 after the parent's close");
    _exit(0);
  }
  await_byte(back[0]);
  show("parent", fd, F_GETLK, F_WRLCK, 10, 1, me);
  check(lk(fd, F_SETLK, F_UNLCK, 22, 2) == 0);  // splits 20+20
  send_byte(go[1]);
  await_byte(back[0]);
  until_sleeping(c);
  // Closing any descriptor of the file drops all of this process's locks on it.
  int dup_fd = open(path, O_RDONLY);
  say("parent: closing another descriptor of the file");
  close(dup_fd);
  check(reap(c) == 0);
  show("parent", fd, F_GETLK, F_WRLCK, 0, 0, me);
  close(fd);
  close(go[0]), close(go[1]), close(back[0]), close(back[1]);
}

static void test_deadlock_and_eintr(void) {
  int fd = open(path, O_RDWR);
  check(fd >= 0);
  check(lk(fd, F_SETLK, F_WRLCK, 0, 1) == 0);
  int back[2];
  check(pipe(back) == 0);
  pid_t c = xfork();
  if (c == 0) {
    check(lk(fd, F_SETLK, F_WRLCK, 1, 1) == 0);
    send_byte(back[1]);
    check(lk(fd, F_SETLKW, F_WRLCK, 0, 1) == 0);  // waits for the parent
    say("child: got 0+1 once the parent unlocked");
    _exit(0);
  }
  await_byte(back[0]);
  until_sleeping(c);
  errno = 0;
  check(lk(fd, F_SETLKW, F_WRLCK, 1, 1) == -1 && errno == EDEADLK);
  say("parent: F_SETLKW that would close the cycle: EDEADLK");
  check(lk(fd, F_SETLK, F_UNLCK, 0, 0) == 0);
  check(reap(c) == 0);
  // A handler without SA_RESTART ends a waiting F_SETLKW with EINTR.
  check(lk(fd, F_SETLK, F_WRLCK, 0, 1) == 0);
  c = xfork();
  if (c == 0) {
    struct sigaction sa = {.sa_handler = on_alarm};
    check(sigaction(SIGALRM, &sa, 0) == 0);
    struct itimerval it = {.it_value = {0, 100000}};
    check(setitimer(ITIMER_REAL, &it, 0) == 0);
    errno = 0;
    check(lk(fd, F_SETLKW, F_WRLCK, 0, 1) == -1 && errno == EINTR);
    say("child: F_SETLKW interrupted by a handler: EINTR");
    _exit(0);
  }
  check(reap(c) == 0);
  // lockf: glibc's F_TEST, F_TLOCK and F_ULOCK over the same locks.
  c = xfork();
  if (c == 0) {
    check(lseek(fd, 0, SEEK_SET) == 0);
    errno = 0;
    check(lockf(fd, F_TEST, 1) == -1 && (errno == EACCES || errno == EAGAIN));
    check(lockf(fd, F_TLOCK, 1) == -1);
    check(lseek(fd, 1, SEEK_SET) == 1);
    check(lockf(fd, F_TEST, 1) == 0 && lockf(fd, F_TLOCK, 1) == 0 && lockf(fd, F_ULOCK, 1) == 0);
    say("child: lockf sees the parent's byte 0, takes byte 1");
    _exit(0);
  }
  check(reap(c) == 0);
  close(fd);
  close(back[0]), close(back[1]);
}

static void test_ofd(void) {
  int a = open(path, O_RDWR), b = open(path, O_RDWR);
  check(a >= 0 && b >= 0);
  check(lk(a, F_OFD_SETLK, F_WRLCK, 0, 10) == 0);
  errno = 0;
  check(lk(b, F_OFD_SETLK, F_RDLCK, 5, 1) == -1 && errno == EAGAIN);
  errno = 0;
  check(lk(b, F_SETLK, F_RDLCK, 5, 1) == -1 && (errno == EAGAIN || errno == EACCES));
  show("ofd", b, F_OFD_GETLK, F_RDLCK, 0, 0, getpid());
  show("ofd", a, F_OFD_GETLK, F_RDLCK, 0, 0, getpid());
  struct flock f = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_pid = 1};
  errno = 0;
  check(fcntl(b, F_OFD_SETLK, &f) == -1 && errno == EINVAL);
  close(a);
  check(lk(b, F_OFD_SETLK, F_RDLCK, 5, 1) == 0);
  say("ofd: two descriptions conflict, POSIX conflicts with OFD, l_pid 0 only, gone at close");
  close(b);
}

static void test_errors(void) {
  int r = open(path, O_RDONLY), w = open(path, O_WRONLY);
  check(r >= 0 && w >= 0);
  errno = 0;
  check(lk(r, F_SETLK, F_WRLCK, 0, 1) == -1 && errno == EBADF);
  errno = 0;
  check(lk(w, F_SETLK, F_RDLCK, 0, 1) == -1 && errno == EBADF);
  check(lk(w, F_SETLK, F_WRLCK, 0, 1) == 0 && lk(r, F_SETLK, F_RDLCK, 4, 1) == 0);
  errno = 0;
  check(lk(r, F_SETLK, 7, 0, 1) == -1 && errno == EINVAL);
  errno = 0;
  check(lk(r, F_GETLK, F_UNLCK, 0, 1) == -1 && errno == EINVAL);
  struct flock f = {.l_type = F_RDLCK, .l_whence = 9};
  errno = 0;
  check(fcntl(r, F_SETLK, &f) == -1 && errno == EINVAL);
  errno = 0;
  check(lk(r, F_SETLK, F_RDLCK, -1, 1) == -1 && errno == EINVAL);
  // A negative length covers the bytes before the start; SEEK_END counts from the size.
  check(lk(r, F_SETLK, F_RDLCK, 10, -5) == 0);
  struct flock e = {.l_type = F_RDLCK, .l_whence = SEEK_END, .l_start = -2, .l_len = 1};
  check(fcntl(r, F_SETLK, &e) == 0);
  say("errors: mode, type, whence and start checked");
  close(r), close(w);
}

static void test_pipe_size(void) {
  int p[2];
  check(pipe(p) == 0);
  say("pipe size %d", fcntl(p[1], F_GETPIPE_SZ));
  int set = fcntl(p[1], F_SETPIPE_SZ, 100000);
  say("set 100000 -> %d, read end %d", set, fcntl(p[0], F_GETPIPE_SZ));
  say("set 1 -> %d", fcntl(p[0], F_SETPIPE_SZ, 1));
  check(fcntl(p[1], F_SETPIPE_SZ, 65536) == 65536);
  static char buf[200000];
  check(write(p[1], buf, 8192) == 8192);
  errno = 0;
  check(fcntl(p[1], F_SETPIPE_SZ, 4096) == -1 && errno == EBUSY);
  check(fcntl(p[1], F_SETPIPE_SZ, 131072) == 131072);
  check(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
  say("a non-blocking write of 200000 takes %zd", write(p[1], buf, sizeof buf) + 8192);
  int fd = open(path, O_RDONLY);
  errno = 0;
  check(fcntl(fd, F_GETPIPE_SZ) == -1 && errno == EBADF);
  close(fd), close(p[0]), close(p[1]);
}

int main(void) {
  snprintf(path, sizeof path, "/tmp/locks-%d", (int)getpid());
  int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
  check(fd >= 0);
  check(write(fd, "0123456789abcdef", 16) == 16);
  close(fd);
  test_flock();
  test_posix();
  test_deadlock_and_eintr();
  test_ofd();
  test_errors();
  test_pipe_size();
  unlink(path);
  say("done");
  return 0;
}
