// posix_spawn, which glibc makes with clone(CLONE_VM | CLONE_VFORK) on a stack of its own: the
// child runs in the parent's memory until its execve, and reports an exec failure (ENOENT)
// by writing it there, which the parent returns; a spawned program's exit code comes back.
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc > 1) {
    printf("spawned child says %s\n", argv[1]);
    return 3;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) {
    perror("readlink");
    return 1;
  }
  self[n] = 0;
  pid_t p;
  char *child[] = {argv[0], "hello", NULL};
  int r = posix_spawn(&p, self, NULL, NULL, child, environ);
  int st = 0;
  if (r == 0 && waitpid(p, &st, 0) != p) perror("waitpid");
  printf("posix_spawn: %d, child exited %d\n", r, WEXITSTATUS(st));
  char *missing[] = {"nope", NULL};
  r = posix_spawn(&p, "/no/such/program", NULL, NULL, missing, environ);
  printf("posix_spawn of a missing file: %s\n", strerror(r));
  return 0;
}
