// Threads made with raw clone(2): shared memory, the same pid, their own tid, CLONE_PARENT_SETTID,
// CLONE_CHILD_CLEARTID (the word goes to 0 when the thread exits), exit of one thread vs
// exit_group from a thread, and Linux's flag rules with their errnos.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int shared;
static volatile pid_t child_tid = -1, parent_tid = -1;
static volatile pid_t seen_pid, seen_tid;
static char stack[8][65536];

static int thread_fn(void *arg) {
  seen_pid = syscall(SYS_getpid);
  seen_tid = syscall(SYS_gettid);
  shared = (int)(long)arg;
  syscall(SYS_exit, 0);  // this thread only
  return 0;
}

static int group_fn(void *arg) {
  (void)arg;
  syscall(SYS_exit_group, 5);  // the whole process
  return 0;
}

#define THREAD (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM)

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  pid_t tid = clone(thread_fn, stack[0] + sizeof stack[0],
                    THREAD | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID, (void *)42,
                    &parent_tid, NULL, &child_tid);
  if (tid < 0) {
    perror("clone");
    return 1;
  }
  while (child_tid != 0) sched_yield();  // CLONE_CHILD_CLEARTID: 0 once the thread is gone
  printf("thread: shared=%d same pid %d, own tid %d, parent_tid ok %d\n", shared, seen_pid == getpid(),
         seen_tid != getpid() && seen_tid == tid, parent_tid == tid);

  // exit_group from a thread ends the process, whose main thread was spinning.
  pid_t c = fork();
  if (c == 0) {
    clone(group_fn, stack[1] + sizeof stack[1], THREAD, NULL);
    for (;;) sched_yield();
  }
  int st;
  waitpid(c, &st, 0);
  printf("exit_group from a thread: exited %d code %d\n", WIFEXITED(st), WEXITSTATUS(st));

  // The main thread exits alone; the other thread ends the process with its own code.
  c = fork();
  if (c == 0) {
    clone(group_fn, stack[2] + sizeof stack[2], THREAD, NULL);
    syscall(SYS_exit, 9);
  }
  waitpid(c, &st, 0);
  printf("leader exit then group exit: code %d\n", WEXITSTATUS(st));

  // The flag rules.
  errno = 0;
  int r = clone(thread_fn, stack[3] + sizeof stack[3], CLONE_THREAD | CLONE_VM, NULL);
  printf("THREAD without SIGHAND: %d %s\n", r, strerror(errno));
  r = clone(thread_fn, stack[3] + sizeof stack[3], CLONE_SIGHAND, NULL);
  printf("SIGHAND without VM: %d %s\n", r, strerror(errno));
  r = clone(thread_fn, stack[3] + sizeof stack[3], CLONE_FS | CLONE_NEWNS, NULL);
  printf("FS with NEWNS: %d %s\n", r, strerror(errno));

  // A child process by clone with another exit signal: only __WCLONE/__WALL waits see it.
  signal(SIGUSR1, SIG_IGN);  // its default would end this process when the child exits
  c = clone(thread_fn, stack[4] + sizeof stack[4], SIGUSR1, NULL);
  r = waitpid(c, &st, WNOHANG);
  printf("waitpid without __WCLONE: %d %s\n", r, strerror(errno));
  r = waitpid(c, &st, __WCLONE);
  printf("waitpid __WCLONE: ok %d code %d\n", r == c, WEXITSTATUS(st));
  return 0;
}
