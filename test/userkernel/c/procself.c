// Reads /proc/self the way real programs do and prints what it finds in a form that does
// not depend on where things are (addresses, pids, host paths): the same lines natively and
// under the userkernel. argv[1]: a directory to make a scratch file in.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static char buf[1 << 16];
int initialized_data = 42;

static ssize_t slurp(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -errno;
  ssize_t n = 0, r;
  while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += r;
  close(fd);
  buf[n] = 0;
  return n;
}

static int put(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -errno;
  int r = write(fd, text, strlen(text));
  int e = errno;
  close(fd);
  return r < 0 ? -e : r;
}

static const char *yes(int c) { return c ? "yes" : "no"; }

struct map {
  unsigned long start, end, off;
  char perms[5];
  char name[PATH_MAX];
  int name_col;
};
static struct map maps[512];
static int nmaps;

static void read_maps(void) {
  slurp("/proc/self/maps");
  nmaps = 0;
  for (char *line = strtok(buf, "\n"); line && nmaps < 512; line = strtok(NULL, "\n")) {
    struct map *m = &maps[nmaps];
    unsigned maj, min;
    unsigned long ino;
    int used = 0;
    if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu %n", &m->start, &m->end, m->perms, &m->off, &maj, &min, &ino,
               &used) < 7)
      continue;
    m->name[0] = 0;
    m->name_col = 0;
    char *name = line + used;
    while (*name == ' ') name++;
    if (*name) {
      snprintf(m->name, sizeof m->name, "%s", name);
      m->name_col = (int)(name - line);
    }
    nmaps++;
  }
}

static struct map *map_of(unsigned long a) {
  for (int i = 0; i < nmaps; i++)
    if (maps[i].start <= a && a < maps[i].end) return &maps[i];
  return NULL;
}

int main(int argc, char **argv) {
  char exe[PATH_MAX], real[PATH_MAX], link[PATH_MAX], cwd[PATH_MAX], want[PATH_MAX];
  ssize_t n;

  // environ: the initial environment, NUL-separated.
  n = slurp("/proc/self/environ");
  for (ssize_t i = 0; i < n; i++)
    if (buf[i] == 0) buf[i] = '\n';
  printf("environ:\n%s", buf);

  // exe, cwd, root.
  n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n < 0 ? 0 : n] = 0;
  printf("exe is argv[0]: %s\n", yes(realpath(argv[0], real) && strcmp(real, exe) == 0));
  n = readlink("/proc/self/cwd", link, sizeof link - 1);
  link[n < 0 ? 0 : n] = 0;
  printf("cwd is getcwd: %s\n", yes(getcwd(cwd, sizeof cwd) && strcmp(cwd, link) == 0));
  n = readlink("/proc/self/root", link, sizeof link - 1);
  link[n < 0 ? 0 : n] = 0;
  printf("root: %s\n", link);

  // maps: sorted, the name in column 73, and each kind of memory where it belongs.
  char *grown = sbrk(0);
  sbrk(8192);
  int local = 0;
  read_maps();
  int sorted = nmaps > 0, col = 1;
  for (int i = 0; i < nmaps; i++) {
    if (i > 0 && maps[i].start < maps[i - 1].end) sorted = 0;
    if (maps[i].name[0] && maps[i].name_col != 73 && strlen(maps[i].name) > 0) col = 0;
  }
  printf("maps sorted: %s, names at column 73: %s\n", yes(sorted), yes(col));
  struct map *text = map_of((unsigned long)&main);
  printf("main: %s %s\n", text ? text->perms : "-", yes(text && strcmp(text->name, exe) == 0));
  struct map *first = NULL;
  for (int i = 0; i < nmaps; i++)
    if (strcmp(maps[i].name, exe) == 0) {
      first = &maps[i];
      break;
    }
  printf("text offset from the first page: %s\n",
         yes(text && first && text->off == text->start - first->start));
  struct map *data = map_of((unsigned long)&initialized_data);
  printf("data: %s %s\n", data ? data->perms : "-", yes(data && strcmp(data->name, exe) == 0));
  struct map *heap = map_of((unsigned long)grown);
  printf("heap: %s %s\n", heap ? heap->perms : "-", heap ? heap->name : "-");
  struct map *stack = map_of((unsigned long)&local);
  printf("stack: %s %s\n", stack ? stack->perms : "-", stack ? stack->name : "-");

  // fd, fdinfo: position and flags of a file and a pipe.
  snprintf(want, sizeof want, "%s/procself-scratch", argv[1]);
  int fd = open(want, O_CREAT | O_RDWR | O_CLOEXEC | O_TRUNC, 0600);
  write(fd, "0123456789", 10);
  lseek(fd, 3, SEEK_SET);
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  n = readlink(link, cwd, sizeof cwd - 1);
  cwd[n < 0 ? 0 : n] = 0;
  char rw[PATH_MAX];
  printf("fd link is the path: %s\n", yes(realpath(want, rw) && strcmp(cwd, rw) == 0));
  struct stat ls;
  lstat(link, &ls);
  printf("fd link mode: %o\n", ls.st_mode & 0777);
  snprintf(link, sizeof link, "/proc/self/fdinfo/%d", fd);
  slurp(link);
  char *mnt = strstr(buf, "\nmnt_id:");
  char *ino = strstr(buf, "\nino:");
  if (mnt) *mnt = 0;
  printf("fdinfo file:\n%s\nmnt_id and ino lines: %s\n", buf, yes(mnt && ino));
  int p[2];
  pipe2(p, O_NONBLOCK);
  snprintf(link, sizeof link, "/proc/self/fdinfo/%d", p[1]);
  slurp(link);
  mnt = strstr(buf, "\nmnt_id:");
  if (mnt) *mnt = 0;
  printf("fdinfo pipe:\n%s\n", buf);
  snprintf(link, sizeof link, "/proc/self/fd/%d", p[1]);
  lstat(link, &ls);
  printf("pipe write end link mode: %o\n", ls.st_mode & 0777);
  close(fd);
  unlink(want);

  // limits: the header and the two set here.
  struct rlimit nofile = {100, 200}, core = {0, 0};
  setrlimit(RLIMIT_NOFILE, &nofile);
  setrlimit(RLIMIT_CORE, &core);
  slurp("/proc/self/limits");
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
    if (!strncmp(line, "Limit ", 6) || !strncmp(line, "Max open files", 14) || !strncmp(line, "Max core file", 13))
      printf("limits: [%s]\n", line);

  // oom_score_adj: Linux's bounds.
  printf("oom 500: %d\n", put("/proc/self/oom_score_adj", "500\n"));
  slurp("/proc/self/oom_score_adj");
  printf("oom now: %s", buf);
  printf("oom 1001: %d\n", put("/proc/self/oom_score_adj", "1001"));
  printf("oom -1001: %d\n", put("/proc/self/oom_score_adj", "-1001"));
  printf("oom abc: %d\n", put("/proc/self/oom_score_adj", "abc"));
  printf("oom 0: %d\n", put("/proc/self/oom_score_adj", "0"));
  slurp("/proc/self/oom_score_adj");
  printf("oom now: %s", buf);

  // comm: written through /proc, seen by prctl, cut to 15 bytes.
  printf("comm write: %d\n", put("/proc/self/comm", "renamed"));
  slurp("/proc/self/comm");
  printf("comm: %s", buf);
  char name[17] = {0};
  prctl(PR_GET_NAME, name);
  printf("prctl name: %s\n", name);
  printf("comm long: %d\n", put("/proc/self/comm", "0123456789abcdefghij"));
  slurp("/proc/self/comm");
  printf("comm: %s", buf);

  // task/ and thread-self: one thread, the process itself.
  DIR *d = opendir("/proc/self/task");
  int tasks = 0, self = 0;
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    tasks++;
    if (atoi(e->d_name) == gettid()) self = 1;
  }
  if (d) closedir(d);
  printf("tasks: %d, the thread itself: %s\n", tasks, yes(self));
  n = readlink("/proc/thread-self", link, sizeof link - 1);
  link[n < 0 ? 0 : n] = 0;
  snprintf(want, sizeof want, "%d/task/%d", getpid(), gettid());
  printf("thread-self: %s\n", yes(strcmp(link, want) == 0));
  snprintf(want, sizeof want, "/proc/self/task/%d/comm", gettid());
  slurp(want);
  printf("task comm: %s", buf);
  snprintf(want, sizeof want, "/proc/self/task/%d/stat", gettid());
  slurp(want);
  printf("task stat starts with tid: %s\n", yes(atoi(buf) == gettid()));
  slurp("/proc/self/status");
  char *th = strstr(buf, "\nThreads:");
  printf("status threads: %d\n", th ? atoi(th + 10) : -1);

  // /proc/sys/kernel.
  struct utsname u;
  uname(&u);
  slurp("/proc/sys/kernel/osrelease");
  printf("osrelease is uname -r: %s\n", yes(strncmp(buf, u.release, strlen(u.release)) == 0));
  slurp("/proc/sys/kernel/hostname");
  printf("hostname is uname -n: %s\n", yes(strncmp(buf, u.nodename, strlen(u.nodename)) == 0));
  slurp("/proc/sys/kernel/ngroups_max");
  printf("ngroups_max: %s", buf);
  slurp("/proc/sys/kernel/pid_max");
  printf("pid_max above 300: %s\n", yes(atoi(buf) > 300));

  // A closed dirfd is ignored for an absolute path, EBADF for a relative one.
  snprintf(want, sizeof want, "%s/procself-dirfd", argv[1]);
  int f2 = open(want, O_CREAT | O_RDWR, 0600);
  unlink(want);
  struct stat a, b2;
  fstat(f2, &a);
  snprintf(link, sizeof link, "/proc/self/fd/%d", f2);
  int rc = fstatat(-1, link, &b2, 0);
  printf("fstatat(-1, absolute): %d same: %s\n", rc, yes(a.st_ino == b2.st_ino && a.st_dev == b2.st_dev));
  errno = 0;
  printf("fstatat(-1, relative): %s\n", fstatat(-1, "x", &b2, 0) < 0 ? strerrorname_np(errno) : "ok");
  printf("fstatat(-1, \"\", AT_EMPTY_PATH): %s\n",
         fstatat(-1, "", &b2, AT_EMPTY_PATH) < 0 ? strerrorname_np(errno) : "ok");
  close(f2);

  // auxv: the pairs the program started with.
  n = slurp("/proc/self/auxv");
  unsigned long *av = (unsigned long *)buf;
  int pagesz = 0, random_same = 0, ends = 0;
  for (ssize_t i = 0; i + 1 < n / 8; i += 2) {
    if (av[i] == AT_PAGESZ && av[i + 1] == 4096) pagesz = 1;
    if (av[i] == AT_RANDOM && av[i + 1] == getauxval(AT_RANDOM)) random_same = 1;
    if (av[i] == AT_NULL) ends = i + 2 == n / 8;
  }
  printf("auxv: pagesz %s, AT_RANDOM as getauxval %s, ends with AT_NULL %s\n", yes(pagesz), yes(random_same),
         yes(ends));

  // statm, /proc/stat, status's Vm lines.
  slurp("/proc/self/statm");
  unsigned long sm[7];
  printf("statm fields: %d\n", sscanf(buf, "%lu %lu %lu %lu %lu %lu %lu", &sm[0], &sm[1], &sm[2], &sm[3], &sm[4],
                                       &sm[5], &sm[6]));
  slurp("/proc/stat");
  char *pr = strstr(buf, "\nprocs_running ");
  printf("stat: softirq %s, procs_running >= 1 %s\n", yes(strstr(buf, "\nsoftirq ") != NULL),
         yes(pr && atoi(pr + 15) >= 1));
  slurp("/proc/self/status");
  printf("status: VmData %s VmStk %s VmExe %s VmHWM %s\n", yes(strstr(buf, "\nVmData:") != NULL),
         yes(strstr(buf, "\nVmStk:") != NULL), yes(strstr(buf, "\nVmExe:") != NULL),
         yes(strstr(buf, "\nVmHWM:") != NULL));

  // /proc/mounts is self/mounts; thread-self holds the same files as self.
  n = readlink("/proc/mounts", link, sizeof link - 1);
  link[n < 0 ? 0 : n] = 0;
  printf("/proc/mounts -> %s\n", link);
  n = readlink("/proc/thread-self/exe", link, sizeof link - 1);
  link[n < 0 ? 0 : n] = 0;
  printf("thread-self/exe is exe: %s\n", yes(strcmp(link, exe) == 0));
  slurp("/proc/sys/kernel/domainname");
  printf("domainname is uname's: %s\n", yes(strncmp(buf, u.domainname, strlen(u.domainname)) == 0));
  slurp("/proc/sys/kernel/random/boot_id");
  printf("boot_id: %zu chars\n", strlen(buf));

  // Shared anonymous memory shows as a deleted /dev/zero.
  char *shared = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  read_maps();
  struct map *sm_map = map_of((unsigned long)shared);
  printf("shared anon: %s %s\n", sm_map ? sm_map->perms : "-", sm_map ? sm_map->name : "-");

  // A pipe's end reopened through /proc/self/fd is the same pipe.
  int pp[2];
  pipe2(pp, O_CLOEXEC);
  snprintf(link, sizeof link, "/proc/self/fd/%d", pp[1]);
  int again = open(link, O_WRONLY);
  ssize_t wr = write(again, "via-fd", 6);
  char pbuf[8] = {0};
  ssize_t rd = read(pp[0], pbuf, sizeof pbuf - 1);
  printf("pipe reopened: open %s, write %zd, read %zd %s\n", again >= 0 ? "ok" : strerrorname_np(errno), wr, rd, pbuf);
  close(again);
  close(pp[0]);
  close(pp[1]);

  // mem: the process's memory, written whatever the page protections; EIO where unmapped.
  int mem = open("/proc/self/mem", O_RDWR);
  char hello[] = "hello-mem", got[sizeof hello] = {0};
  printf("mem pread: %zd %s\n", pread(mem, got, sizeof got, (off_t)hello), got);
  char *ro = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(ro + 4096, 4096);
  mprotect(ro, 4096, PROT_READ);
  printf("mem pwrite read-only page: %zd %s\n", pwrite(mem, "forced", 7, (off_t)ro), ro);
  printf("mem read across the end: %zd\n", pread(mem, got, sizeof got, (off_t)(ro + 4090)));
  errno = 0;
  ssize_t un = pread(mem, got, 4, (off_t)(ro + 4096));
  printf("mem unmapped: %zd %s\n", un, strerrorname_np(errno));
  lseek(mem, (off_t)hello, SEEK_SET);
  read(mem, got, 5);
  printf("mem read at lseek: %.5s, then %ld\n", got, (long)(lseek(mem, 0, SEEK_CUR) - (off_t)hello));
  close(mem);

  // stat's layout fields: code around main, the stack above us, the argument and environment
  // ranges holding what cmdline and environ show.
  slurp("/proc/self/stat");
  char *f = strrchr(buf, ')') + 2;
  unsigned long fv[60] = {0};
  for (int i = 3; i < 53 && f; i++) {
    fv[i] = strtoul(f, NULL, 10);
    f = strchr(f, ' ');
    if (f) f++;
  }
  printf("stat: main in code %s, stack above us %s\n",
         yes(fv[26] <= (unsigned long)&main && (unsigned long)&main < fv[27]), yes(fv[28] > (unsigned long)&local));
  char ranges[2][4096];
  ssize_t rl[2];
  int mfd = open("/proc/self/mem", O_RDONLY);
  rl[0] = pread(mfd, ranges[0], fv[49] - fv[48], fv[48]);
  rl[1] = pread(mfd, ranges[1], fv[51] - fv[50], fv[50]);
  close(mfd);
  n = slurp("/proc/self/cmdline");
  int args_same = rl[0] == n && memcmp(ranges[0], buf, n) == 0;
  n = slurp("/proc/self/environ");
  printf("stat: arg range is cmdline %s, env range is environ %s\n", yes(args_same),
         yes(rl[1] == n && memcmp(ranges[1], buf, n) == 0));

  // /proc is mounted rw, as under runc; its directories refuse new names and removals.
  slurp("/proc/self/mounts");
  printf("/proc mounted rw: %s\n", yes(strstr(buf, " /proc proc rw,") != NULL));
  errno = 0;
  int pr1 = mkdir("/proc/xyz", 0755);
  printf("mkdir in /proc: %d %s\n", pr1, strerrorname_np(errno));
  errno = 0;
  pr1 = open("/proc/newfile", O_CREAT | O_WRONLY, 0644);
  printf("creat in /proc: %d %s\n", pr1, strerrorname_np(errno));
  errno = 0;
  pr1 = unlink("/proc/self/comm");
  printf("unlink in /proc: %d %s\n", pr1, strerrorname_np(errno));

  // Owners and modes of the writable and private files.
  struct stat st;
  stat("/proc/self/environ", &st);
  printf("environ: %o mine: %s\n", st.st_mode & 0777, yes(st.st_uid == geteuid()));
  stat("/proc/self/comm", &st);
  printf("comm: %o\n", st.st_mode & 0777);
  stat("/proc/self/oom_score_adj", &st);
  printf("oom_score_adj: %o\n", st.st_mode & 0777);
  return 0;
}
