// clone(2) and clone3(2) through the raw system calls, as glibc and Go use them: a thread
// made with CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|
// CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID on a stack of its own (its tid is
// written for the parent, and cleared with a futex wake when it exits); a process made with
// CLONE_VFORK|CLONE_VM (the parent sleeps until it exits); CLONE_PARENT (the new process is
// the caller's sibling, so its parent's child); clone3 with exit_signal SIGCHLD (a fork).
#include "compat.h"
#include <sched.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define STACK (64 * 1024)

// The thread runs with no TLS of glibc's: only raw system calls and plain memory.
static volatile int thread_saw;
static int thread_fn(void *arg) {
  thread_saw = *(int *)arg;
  syscall(SYS_exit, 0);
  return 0;
}

static volatile int vfork_child_wrote;
static int vfork_fn(void *arg) {
  (void)arg;
  vfork_child_wrote = 1;
  syscall(SYS_exit, 5);
  return 0;
}

static int parent_fn(void *arg) {
  (void)arg;
  syscall(SYS_exit, 0);
  return 0;
}

int main(void) {
  char *stack = malloc(STACK);
  check(stack != 0);
  // A thread: the tid word is set by the kernel (PARENT_SETTID) and cleared at its exit.
  static pid_t tid_word;
  int arg = 77;
  unsigned long tls;
  __asm__ volatile("mov %%fs:0, %0" : "=r"(tls));  // the caller's TCB: the thread makes no TLS use
  int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
              CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
  int tid = clone(thread_fn, stack + STACK, flags, &arg, &tid_word, (void *)tls, &tid_word);
  check(tid > 0);
  say("thread: PARENT_SETTID wrote its tid %d", tid_word == tid || tid_word == 0);
  while (tid_word != 0) syscall(SYS_futex, &tid_word, FUTEX_WAIT, tid, 0, 0, 0);
  say("thread: CHILD_CLEARTID cleared the word at its exit and it saw its argument %d", thread_saw);

  vfork_child_wrote = 0;
  int p = clone(vfork_fn, stack + STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, 0);
  check(p > 0);
  say("CLONE_VFORK|CLONE_VM: the parent resumed after the child's exit, its write seen %d", vfork_child_wrote);
  int st;
  check(waitpid(p, &st, 0) == p);
  say("  and it exited %d", WEXITSTATUS(st));

  // CLONE_PARENT from a child: the new process is this process's child, its sibling's.
  pid_t c1 = xfork();
  if (c1 == 0) {
    int n = clone(parent_fn, stack + STACK, CLONE_PARENT | SIGCHLD, 0);
    _exit(n > 0 ? 0 : 1);
  }
  check(waitpid(c1, &st, 0) == c1);
  say("CLONE_PARENT in a child: it made its process: %d", WEXITSTATUS(st) == 0);
  pid_t n = wait(&st);
  say("  which this process reaps as its own child: %s, exited %d", n > 0 ? "yes" : ename(errno), WEXITSTATUS(st));

  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.exit_signal = SIGCHLD;
  long c = syscall(SYS_clone3, &ca, sizeof ca);
  if (c == 0) _exit(6);
  check(c > 0);
  check(waitpid((pid_t)c, &st, 0) == c);
  say("clone3 as fork: the child exited %d", WEXITSTATUS(st));
  return 0;
}
