// memfd_create and its seals, fallocate on a memfd (a tmpfs file, natively too), the ioctls
// every file answers (FIONBIO, FIOCLEX, FIONCLEX), setreuid/setregid's rules, and the
// scheduling calls naming another process, preadv2/pwritev2 and their flags, copy_file_range
// between memfds: the same output
// natively and under the userkernel.
#include "compat.h"
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

static int err(long r) { return r < 0 ? errno : 0; }

static void memfd_basics(void) {
  int fd = memfd_create("hi", MFD_CLOEXEC);
  check(fd >= 0);
  say("cloexec %d", fcntl(fd, F_GETFD));
  char link[64], path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  check(n > 0);
  link[n] = 0;
  say("link %s", link);
  struct stat st;
  check(fstat(fd, &st) == 0);
  say("stat reg=%d mode=%o nlink=%lu size=%ld", S_ISREG(st.st_mode), st.st_mode & 07777, (unsigned long)st.st_nlink,
      (long)st.st_size);
  say("flags rdwr=%d", (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
  check(write(fd, "memfd_create", 12) == 12);
  say("pos %ld", (long)lseek(fd, 0, SEEK_CUR));
  check(ftruncate(fd, 8192) == 0);
  char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  check(m != MAP_FAILED);
  say("mapped %.12s", m);
  memcpy(m + 4096, "through the map", 15);
  char buf[32] = {0};
  check(pread(fd, buf, 15, 4096) == 15);
  say("pread %s", buf);
  pid_t c = fork();
  if (c == 0) {
    memcpy(m + 100, "child", 5);
    _exit(0);
  }
  int status;
  check(waitpid(c, &status, 0) == c);
  check(pread(fd, buf, 5, 100) == 5);
  buf[5] = 0;
  say("child wrote %s", buf);
  unsigned char vec[2] = {0, 0};
  int mc = err(mincore(m, 8192, vec));
  say("mincore: %s, resident %d %d", ename(mc), vec[0] & 1, vec[1] & 1);
  say("mincore unaligned: %s", ename(err(mincore(m + 1, 4096, vec))));
  munmap(m, 8192);
  say("mincore unmapped: %s", ename(err(mincore(m, 8192, vec))));
  close(fd);

  // The name: 249 bytes fit, 250 do not; unknown flags are EINVAL.
  char name[300];
  memset(name, 'n', sizeof name);
  name[249] = 0;
  fd = memfd_create(name, 0);
  say("name 249: %s", ename(err(fd)));
  if (fd >= 0) close(fd);
  name[249] = 'n';
  name[250] = 0;
  say("name 250: %s", ename(err(memfd_create(name, 0))));
  say("bad flags: %s", ename(err(memfd_create("x", 0x100))));
}

static void seals(void) {
  int fd = memfd_create("plain", 0);
  check(fd >= 0);
  say("plain seals %d", fcntl(fd, F_GET_SEALS));
  say("plain add: %s", ename(err(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK))));
  close(fd);

  fd = memfd_create("sealed", MFD_ALLOW_SEALING);
  check(fd >= 0);
  say("sealing seals %d", fcntl(fd, F_GET_SEALS));
  check(ftruncate(fd, 4096) == 0);
  say("bad seal: %s", ename(err(fcntl(fd, F_ADD_SEALS, 0x100))));
  check(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
  say("shrink: %s", ename(err(ftruncate(fd, 100))));
  say("grow: %s", ename(err(ftruncate(fd, 8192))));
  check(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW) == 0);
  say("write past end: %s", ename(err(pwrite(fd, "x", 1, 8192))));
  say("write inside: %s", ename(err(pwrite(fd, "x", 1, 10))));
  say("grow again: %s", ename(err(ftruncate(fd, 9000))));
  char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  check(m != MAP_FAILED);
  say("seal write while mapped: %s", ename(err(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE))));
  munmap(m, 4096);
  say("seal write: %s", ename(err(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE))));
  say("write sealed: %s", ename(err(pwrite(fd, "x", 1, 10))));
  say("map shared rw: %s", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ? ename(errno) : "0");
  m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
  say("map shared ro: %s", m == MAP_FAILED ? ename(errno) : "0");
  if (m != MAP_FAILED) munmap(m, 4096);
  m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  say("map private rw: %s", m == MAP_FAILED ? ename(errno) : "0");
  if (m != MAP_FAILED) {
    m[0] = 1;
    munmap(m, 4096);
  }
  check(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL) == 0);
  say("seals now %d", fcntl(fd, F_GET_SEALS));
  say("add after seal: %s", ename(err(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK))));
  close(fd);
  int p[2];
  check(pipe(p) == 0);
  say("pipe seals: %s", ename(err(fcntl(p[0], F_GET_SEALS))));
  close(p[0]);
  close(p[1]);
}

static void allocate(void) {
  int fd = memfd_create("space", 0);
  check(fd >= 0);
  struct stat st;
  check(fallocate(fd, 0, 0, 10000) == 0);
  check(fstat(fd, &st) == 0);
  say("reserve: size %ld", (long)st.st_size);
  check(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 20000) == 0);
  check(fstat(fd, &st) == 0);
  say("keep size: size %ld", (long)st.st_size);
  check(fallocate(fd, 0, 5000, 1000) == 0);
  check(fstat(fd, &st) == 0);
  say("inside: size %ld", (long)st.st_size);
  char buf[300];
  memset(buf, 'a', sizeof buf);
  check(pwrite(fd, buf, sizeof buf, 0) == sizeof buf);
  say("punch without keep: %s", ename(err(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 100, 50))));
  check(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 50) == 0);
  check(pread(fd, buf, sizeof buf, 0) == sizeof buf);
  int zeros = 0, as = 0;
  for (size_t i = 0; i < sizeof buf; i++) zeros += buf[i] == 0, as += buf[i] == 'a';
  say("punched: %d zeros at %d, %d a", zeros, (int)(strchr(buf, 0) - buf), as);
  check(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 9000, 100000) == 0);
  check(fstat(fd, &st) == 0);
  say("punch past end: size %ld", (long)st.st_size);
  say("len 0: %s", ename(err(fallocate(fd, 0, 0, 0))));
  say("offset -1: %s", ename(err(fallocate(fd, 0, -1, 10))));
  say("unknown mode: %s", ename(err(fallocate(fd, 0x80, 0, 10))));
  say("punch and zero: %s", ename(err(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 10))));
  say("collapse with keep: %s", ename(err(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096))));
  say("collapse: %s", ename(err(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096))));
  say("zero range: %s", ename(err(fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 10))));
  say("posix_fallocate bad fd: %s", ename(posix_fallocate(-42, 0, 10)));
  close(fd);
  int p[2];
  check(pipe(p) == 0);
  say("pipe write end: %s", ename(err(fallocate(p[1], 0, 0, 10))));
  say("pipe read end: %s", ename(err(fallocate(p[0], 0, 0, 10))));
  int dir = open("/", O_RDONLY | O_DIRECTORY);
  say("read-only dir: %s", ename(err(fallocate(dir, 0, 0, 10))));
  int opath = open("/", O_PATH);
  say("O_PATH: F_GETFL %s, F_SETFL %s, F_GET_SEALS %s", ename(err(fcntl(opath, F_GETFL))), ename(err(fcntl(opath, F_SETFL, 0))),
      ename(err(fcntl(opath, F_GET_SEALS))));
  close(opath);
  // dnotify with no event: it only drops a registration (python's test_fcntl_64_bit).
  say("F_NOTIFY multishot alone: %s", ename(err(fcntl(dir, F_NOTIFY, DN_MULTISHOT))));
  say("F_NOTIFY without events on a pipe: %s", ename(err(fcntl(p[0], F_NOTIFY, DN_MULTISHOT))));
  say("F_NOTIFY with events on a pipe: %s", ename(err(fcntl(p[0], F_NOTIFY, DN_CREATE))));
  close(dir);

  // The ioctls of every file.
  int on = 1;
  check(ioctl(p[0], FIONBIO, &on) == 0);
  say("fionbio on: nonblock=%d read=%s", (fcntl(p[0], F_GETFL) & O_NONBLOCK) != 0, ename(err(read(p[0], buf, 1))));
  on = 0;
  check(ioctl(p[0], FIONBIO, &on) == 0);
  say("fionbio off: nonblock=%d", (fcntl(p[0], F_GETFL) & O_NONBLOCK) != 0);
  check(ioctl(p[0], FIOCLEX) == 0);
  say("fioclex: %d", fcntl(p[0], F_GETFD));
  check(ioctl(p[0], FIONCLEX) == 0);
  say("fionclex: %d", fcntl(p[0], F_GETFD));
  close(p[0]);
  close(p[1]);
}

static void ids(void) {
  pid_t c = fork();
  if (c == 0) {
    check(setresgid(2000, 2001, 2002) == 0);
    check(setresuid(1000, 1001, 1002) == 0);
    uid_t r, e, s;
    gid_t gr, ge, gs;
    say("setregid(-1,-1): %s", ename(err(setregid(-1, -1))));
    say("setregid(-1,2002): %s", ename(err(setregid(-1, 2002))));
    check(getresgid(&gr, &ge, &gs) == 0);
    say("gids %u %u %u", gr, ge, gs);
    say("setregid(2002,-1): %s", ename(err(setregid(2002, -1))));
    check(getresgid(&gr, &ge, &gs) == 0);
    say("gids %u %u %u", gr, ge, gs);
    say("setregid(2000,-1): %s", ename(err(setregid(2000, -1))));
    say("setreuid(-1,-1): %s", ename(err(setreuid(-1, -1))));
    say("setreuid(-1,1002): %s", ename(err(setreuid(-1, 1002))));
    check(getresuid(&r, &e, &s) == 0);
    say("uids %u %u %u", r, e, s);
    say("setreuid(-1,1000): %s", ename(err(setreuid(-1, 1000))));
    check(getresuid(&r, &e, &s) == 0);
    say("uids %u %u %u", r, e, s);
    say("setreuid(1002,-1): %s", ename(err(setreuid(1002, -1))));
    say("setreuid(1000,1002): %s", ename(err(setreuid(1000, 1002))));
    check(getresuid(&r, &e, &s) == 0);
    say("uids %u %u %u", r, e, s);
    say("setreuid(5,5): %s", ename(err(setreuid(5, 5))));
    _exit(0);
  }
  int status;
  check(waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // Root may pick any ids; the saved id follows the effective one when the real one is set.
  c = fork();
  if (c == 0) {
    uid_t r, e, s;
    check(setreuid(7, 8) == 0);
    check(getresuid(&r, &e, &s) == 0);
    say("root setreuid(7,8): uids %u %u %u", r, e, s);
    _exit(0);
  }
  check(waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void rw2(void) {
  int fd = memfd_create("rw2", 0);
  check(fd >= 0);
  char a[] = "hello ", b[] = "world";
  struct iovec w[2] = {{a, 6}, {b, 5}};
  say("pwritev2 at 0: %ld", (long)pwritev2(fd, w, 2, 0, 0));
  say("pos after: %ld", (long)lseek(fd, 0, SEEK_CUR));
  ssize_t n = pwritev2(fd, w, 1, -1, 0);
  say("pwritev2 at -1: %ld, pos %ld", (long)n, (long)lseek(fd, 0, SEEK_CUR));
  say("pwritev2 append at 2: %ld", (long)pwritev2(fd, w + 1, 1, 2, RWF_APPEND));
  say("pwritev2 sync: %ld", (long)pwritev2(fd, w, 1, 0, RWF_SYNC | RWF_DSYNC | RWF_HIPRI));
  char r1[8] = {0}, r2[32] = {0};
  struct iovec rv[2] = {{r1, 7}, {r2, sizeof r2 - 1}};
  n = preadv2(fd, rv, 2, 0, RWF_HIPRI);
  say("preadv2: %ld [%s][%s]", (long)n, r1, r2);
  lseek(fd, 6, SEEK_SET);
  memset(r2, 0, sizeof r2);
  struct iovec one = {r2, 5};
  n = preadv2(fd, &one, 1, -1, 0);
  off_t pos = lseek(fd, 0, SEEK_CUR);
  say("preadv2 at -1: %ld [%s], pos %ld", (long)n, r2, (long)pos);
  say("unknown flag: %s", ename(err(preadv2(fd, &one, 1, 0, 0x10000000))));
  say("offset -2: %s", ename(err(preadv2(fd, &one, 1, -2, 0))));
  close(fd);
  int p[2];
  check(pipe(p) == 0);
  say("nowait on an empty pipe: %s", ename(err(preadv2(p[0], &one, 1, -1, RWF_NOWAIT))));
  check(write(p[1], "xy", 2) == 2);
  n = preadv2(p[0], &one, 1, -1, RWF_NOWAIT);
  say("nowait with data: %ld", (long)n);
  say("pipe at an offset: %s", ename(err(preadv2(p[0], &one, 1, 0, 0))));
  close(p[0]);
  close(p[1]);
}

static void copy_range(void) {
  int a = memfd_create("a", 0), b = memfd_create("b", 0);
  check(a >= 0 && b >= 0);
  check(write(a, "0123456789", 10) == 10);
  lseek(a, 2, SEEK_SET);
  ssize_t n = copy_file_range(a, NULL, b, NULL, 5, 0);
  off_t pa = lseek(a, 0, SEEK_CUR), pb = lseek(b, 0, SEEK_CUR);
  say("copy at the positions: %ld, positions %ld %ld", (long)n, (long)pa, (long)pb);
  loff_t in = 8, out = 100;
  n = copy_file_range(a, &in, b, &out, 50, 0);
  say("copy at offsets: %ld, offsets now %ld %ld, positions %ld %ld", (long)n, (long)in, (long)out,
      (long)lseek(a, 0, SEEK_CUR), (long)lseek(b, 0, SEEK_CUR));
  in = 10;
  say("at the end: %ld", (long)copy_file_range(a, &in, b, NULL, 5, 0));
  char buf[128] = {0};
  n = pread(b, buf, sizeof buf, 0);
  say("b: %ld bytes, [%.5s] then [%.2s] at 100", (long)n, buf, buf + 100);
  say("flags: %s", ename(err(copy_file_range(a, NULL, b, NULL, 1, 1))));
  in = 0, out = 3;
  say("overlap in one file: %s", ename(err(copy_file_range(a, &in, a, &out, 5, 0))));
  in = 0, out = 5;
  say("one file, apart: %ld", (long)copy_file_range(a, &in, a, &out, 5, 0));
  int p[2];
  check(pipe(p) == 0);
  say("from a pipe: %s", ename(err(copy_file_range(p[0], NULL, b, NULL, 1, 0))));
  int dir = open("/", O_RDONLY | O_DIRECTORY);
  say("from a directory: %s", ename(err(copy_file_range(dir, NULL, b, NULL, 1, 0))));
  int ro = open("/proc/self/exe", O_RDONLY);
  say("into a read-only file: %s", ename(err(copy_file_range(a, NULL, ro, NULL, 1, 0))));
  close(dir);
  close(ro);
  close(p[0]);
  close(p[1]);
  close(a);
  close(b);
}

static void *spin(void *arg) {
  (void)arg;
  pause();
  return NULL;
}

static void sched_calls(void) {
  cpu_set_t set;
  say("getaffinity(-1): %s", ename(err(sched_getaffinity(-1, sizeof set, &set))));
  say("getaffinity(99999): %s", ename(err(sched_getaffinity(99999, sizeof set, &set))));
  say("getaffinity(0, 1 byte): %s", ename(err(syscall(SYS_sched_getaffinity, 0, 1, &set))));
  int p[2];
  check(pipe(p) == 0);
  pid_t c = fork();
  if (c == 0) {
    char b;
    close(p[1]);
    ssize_t n = read(p[0], &b, 1);
    (void)n;
    _exit(0);
  }
  close(p[0]);
  cpu_set_t mine, theirs;
  check(sched_getaffinity(0, sizeof mine, &mine) == 0);
  check(sched_getaffinity(c, sizeof theirs, &theirs) == 0);
  say("child's affinity is ours: %d", CPU_EQUAL(&mine, &theirs));
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int i = 0; i < CPU_SETSIZE; i++)
    if (CPU_ISSET(i, &mine)) {
      CPU_SET(i, &one);
      break;
    }
  check(sched_setaffinity(c, sizeof one, &one) == 0);
  check(sched_getaffinity(c, sizeof theirs, &theirs) == 0);
  say("child's set affinity: %d cpus, same as set %d", CPU_COUNT(&theirs), CPU_EQUAL(&one, &theirs));
  check(sched_getaffinity(0, sizeof theirs, &theirs) == 0);
  say("ours unchanged: %d", CPU_EQUAL(&mine, &theirs));
  errno = 0;
  int before = getpriority(PRIO_PROCESS, (id_t)c);
  say("child's nice %d (%s)", before, ename(errno));
  check(setpriority(PRIO_PROCESS, (id_t)c, 5) == 0);
  errno = 0;
  say("child's nice now %d (%s), ours %d", getpriority(PRIO_PROCESS, (id_t)c), ename(errno), getpriority(PRIO_PROCESS, 0));
  errno = 0;
  say("nice of 99999: %d (%s)", getpriority(PRIO_PROCESS, 99999), ename(errno));
  say("setpriority bad which: %s", ename(err(setpriority(7, 0, 0))));
  say("scheduler of child %d, of -1: %s", sched_getscheduler(c), ename(err(sched_getscheduler(-1))));
  struct sched_param sp = {0};
  int r;
  say("getparam child: %s prio %d", ename(err(sched_getparam(c, &sp))), sp.sched_priority);
  r = sched_setscheduler(c, SCHED_BATCH, &sp);
  say("setscheduler child batch: %s, now %d", ename(err(r)), sched_getscheduler(c));
  say("ours still %d", sched_getscheduler(0));
  struct timespec ts = {-1, -1};
  r = sched_rr_get_interval(c, &ts);
  say("rr interval of child: %s, under a second %d", ename(err(r)), ts.tv_sec == 0 && ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
  say("rr interval of -1: %s", ename(err(sched_rr_get_interval(-1, &ts))));
  say("rr interval of 99999: %s", ename(err(sched_rr_get_interval(99999, &ts))));
  close(p[1]);
  int status;
  check(waitpid(c, &status, 0) == c);

  // membarrier with a second thread to order.
  pthread_t th;
  check(pthread_create(&th, NULL, spin, NULL) == 0);
  say("membarrier private before register: %s", ename(err(syscall(SYS_membarrier, 8 /* PRIVATE_EXPEDITED */, 0, 0))));
  say("membarrier register: %s", ename(err(syscall(SYS_membarrier, 16, 0, 0))));
  say("membarrier private: %s", ename(err(syscall(SYS_membarrier, 8, 0, 0))));
  say("membarrier global: %s", ename(err(syscall(SYS_membarrier, 1, 0, 0))));
}

int main(void) {
  memfd_basics();
  seals();
  allocate();
  rw2();
  copy_range();
  ids();
  sched_calls();
  say("done");
  return 0;
}
