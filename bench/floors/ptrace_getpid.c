// The ptrace platform's floor: a C tracer that runs a child under PTRACE_SYSEMU and answers
// each of its getpid calls itself, doing per call what moat's kernel does (wait for the stop,
// read the registers, set the return value, resume). Prints microseconds per syscall.
// With "spin", it polls waitpid(WNOHANG) instead of sleeping in waitpid, as moat does first.
// Usage: ptrace_getpid [N] [spin]
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_SYSEMU
#define PTRACE_SYSEMU 31
#endif

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  int spin = argc > 2 && argv[2][0] == 's';
  pid_t child = fork();
  if (child < 0) return perror("fork"), 1;
  if (child == 0) {
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    raise(SIGSTOP);
    long acc = 0;
    for (long i = 0; i < n; i++) acc += syscall(SYS_getpid);
    syscall(SYS_exit_group, acc == 4242L * n ? 0 : 1);
    return 2;
  }
  int status;
  waitpid(child, &status, 0);
  ptrace(PTRACE_SETOPTIONS, child, 0, PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD);
  long served = 0;
  int code = -1;
  double t0 = now_us();
  ptrace(PTRACE_SYSEMU, child, 0, 0);
  for (;;) {
    pid_t got;
    do got = waitpid(child, &status, __WALL | (spin ? WNOHANG : 0));
    while (got == 0);
    if (got < 0) return perror("waitpid"), 1;
    if (!WIFSTOPPED(status)) break;
    struct user_regs_struct regs;
    ptrace(PTRACE_GETREGS, child, 0, &regs);
    if (regs.orig_rax == SYS_exit_group) {
      code = (int)regs.rdi;
      break;
    }
    regs.rax = regs.orig_rax == SYS_getpid ? 4242 : (unsigned long)-38;
    served++;
    ptrace(PTRACE_SETREGS, child, 0, &regs);
    ptrace(PTRACE_SYSEMU, child, 0, 0);
  }
  double t1 = now_us();
  kill(child, SIGKILL);
  waitpid(child, &status, __WALL);
  if (code != 0 || served < n) {
    fprintf(stderr, "child failed: code %d, served %ld of %ld\n", code, served, n);
    return 1;
  }
  printf("%.3f\n", (t1 - t0) / served);
  return 0;
}
