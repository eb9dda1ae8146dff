// /proc/self/task lists every thread of the process (here the main thread and two made by
// raw clone(CLONE_THREAD)), and /proc/self/status counts them in Threads:.
#define _GNU_SOURCE
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char stacks[2][65536];
static volatile int go;

static int fn(void *a) {
  (void)a;
  while (!go) sched_yield();
  syscall(SYS_exit, 0);
  return 0;
}

int main(void) {
  for (int i = 0; i < 2; i++)
    clone(fn, stacks[i] + sizeof stacks[i],
          CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM, NULL);
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  int threads = 0;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "Threads:", 8)) sscanf(line + 8, "%d", &threads);
  fclose(f);
  printf("task entries %d, Threads %d\n", n, threads);
  go = 1;
  return 0;
}
