/* Makes system calls whose arguments the seccomp tests choose, and prints what came back:
 *   probe ARG...   getppid(ARG) for each 64-bit ARG (getppid ignores its arguments, but
 *                  the filter sees them): "ok" or the errno
 *   probe i386     getpid through the i386 ABI (int 0x80)
 *   probe x32      getpid through the x32 ABI number
 *   probe mkdir D  mkdir(D) */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static sigjmp_buf no_i386;
static void on_segv(int sig) {
  (void)sig;
  siglongjmp(no_i386, 1);
}

static void report(long r) {
  if (r < 0) printf("%s\n", strerror(errno));
  else printf("ok\n");
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "i386") == 0) {
    /* A kernel without the i386 ABI (or a host that blocks it) answers int 0x80 with SIGSEGV. */
    signal(SIGSEGV, on_segv);
    if (sigsetjmp(no_i386, 1)) {
      printf("no i386 ABI\n");
      return 0;
    }
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20) : "memory");
    printf("%s\n", r < 0 ? strerror((int)-r) : "ok");
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "x32") == 0) {
    report(syscall(0x40000000 | SYS_getpid));
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "mkdir") == 0) {
    report(mkdir(argv[2], 0700));
    return 0;
  }
  for (int i = 1; i < argc; i++) report(syscall(SYS_getppid, strtoull(argv[i], NULL, 0), 0, 0, 0, 0, 0));
  return 0;
}
